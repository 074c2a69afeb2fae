-- Clone Factory root indexes v1.1 (MySQL 8 and MariaDB 10.11).
CREATE INDEX idx_users_role ON users (role);
CREATE INDEX idx_products_category ON products (category);
CREATE INDEX idx_orders_user_id ON orders (user_id);
CREATE INDEX idx_orders_product_id ON orders (product_id);
CREATE INDEX idx_orders_created_at ON orders (created_at);
CREATE INDEX idx_customers_created_at ON customers (created_at);
CREATE INDEX idx_orders_customer_id ON orders (customer_id);
CREATE INDEX idx_orders_status_created_at ON orders (status, created_at);
