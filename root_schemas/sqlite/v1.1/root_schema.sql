-- Clone Factory root schema v1.1 (SQLite).
-- SQLite cannot add CHECK or FOREIGN KEY constraints to an existing table (it has no
-- ALTER TABLE ... ADD CONSTRAINT), so they are declared here, inline. constraints.sql
-- holds what SQLite can add afterwards: the unique constraints, as unique indexes.
-- Ids are INTEGER PRIMARY KEY (the 64-bit rowid); the other integers use the same
-- declared types as the server engines so that the schemas compare equal.
CREATE TABLE users (
  id         INTEGER PRIMARY KEY,
  email      VARCHAR(255) NOT NULL,
  full_name  VARCHAR(255) NOT NULL,
  role       VARCHAR(20)  NOT NULL DEFAULT 'user',
  is_active  BOOLEAN      NOT NULL DEFAULT TRUE,
  created_at TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT ck_users_role CHECK (role IN ('admin', 'user', 'analyst')),
  CONSTRAINT ck_users_email CHECK (email LIKE '%@%')
);

CREATE TABLE products (
  id          INTEGER PRIMARY KEY,
  sku         VARCHAR(64)   NOT NULL,
  name        VARCHAR(255)  NOT NULL,
  description TEXT,
  category    VARCHAR(64)   NOT NULL,
  price       DECIMAL(12,2) NOT NULL,
  stock       INTEGER       NOT NULL DEFAULT 0,
  created_at  TIMESTAMP     NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT ck_products_price CHECK (price >= 0),
  CONSTRAINT ck_products_stock CHECK (stock >= 0)
);

CREATE TABLE customers (
  id         INTEGER PRIMARY KEY,
  email      VARCHAR(255) NOT NULL,
  full_name  VARCHAR(255) NOT NULL,
  phone      VARCHAR(32),
  created_at TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT ck_customers_email CHECK (email LIKE '%@%')
);

CREATE TABLE orders (
  id          INTEGER PRIMARY KEY,
  user_id     BIGINT        NOT NULL,
  product_id  BIGINT        NOT NULL,
  quantity    INTEGER       NOT NULL,
  total       DECIMAL(12,2) NOT NULL,
  status      VARCHAR(20)   NOT NULL DEFAULT 'pending',
  created_at  TIMESTAMP     NOT NULL DEFAULT CURRENT_TIMESTAMP,
  customer_id BIGINT,
  CONSTRAINT ck_orders_quantity CHECK (quantity > 0),
  CONSTRAINT ck_orders_total CHECK (total >= 0),
  CONSTRAINT ck_orders_status CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled')),
  CONSTRAINT fk_orders_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
  CONSTRAINT fk_orders_product FOREIGN KEY (product_id) REFERENCES products (id) ON DELETE RESTRICT,
  CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE SET NULL
);
