-- Clone Factory root constraints v1.0 (MySQL 8 and MariaDB 10.11): uniques, checks, foreign keys.
ALTER TABLE users ADD CONSTRAINT uq_users_email UNIQUE (email);
ALTER TABLE users ADD CONSTRAINT ck_users_role CHECK (role IN ('admin', 'user', 'analyst'));
ALTER TABLE users ADD CONSTRAINT ck_users_email CHECK (email LIKE '%@%');

ALTER TABLE products ADD CONSTRAINT uq_products_sku UNIQUE (sku);
ALTER TABLE products ADD CONSTRAINT ck_products_price CHECK (price >= 0);
ALTER TABLE products ADD CONSTRAINT ck_products_stock CHECK (stock >= 0);

ALTER TABLE orders ADD CONSTRAINT ck_orders_quantity CHECK (quantity > 0);
ALTER TABLE orders ADD CONSTRAINT ck_orders_total CHECK (total >= 0);
ALTER TABLE orders ADD CONSTRAINT ck_orders_status
  CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled'));
ALTER TABLE orders ADD CONSTRAINT fk_orders_user
  FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE orders ADD CONSTRAINT fk_orders_product
  FOREIGN KEY (product_id) REFERENCES products (id) ON DELETE RESTRICT;
