-- Clone Factory migration v1.0 -> v1.1 (SQLite).
-- Adds customers, links orders to them, backfills one customer per ordering user,
-- and adds the v1.1 indexes. The result must fingerprint exactly like a fresh v1.1.
-- SQLite may add a column with a REFERENCES clause when its default is NULL.
CREATE TABLE customers (
  id         INTEGER PRIMARY KEY,
  email      VARCHAR(255) NOT NULL,
  full_name  VARCHAR(255) NOT NULL,
  phone      VARCHAR(32),
  created_at TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT ck_customers_email CHECK (email LIKE '%@%')
);
CREATE UNIQUE INDEX uq_customers_email ON customers (email);
CREATE INDEX idx_customers_created_at ON customers (created_at);

ALTER TABLE orders ADD COLUMN customer_id BIGINT
  CONSTRAINT fk_orders_customer REFERENCES customers (id) ON DELETE SET NULL;
CREATE INDEX idx_orders_customer_id ON orders (customer_id);
CREATE INDEX idx_orders_status_created_at ON orders (status, created_at);

INSERT INTO customers (email, full_name)
SELECT u.email, u.full_name FROM users u
WHERE u.id IN (SELECT o.user_id FROM orders o);

UPDATE orders SET customer_id = (
  SELECT c.id FROM customers c JOIN users u ON u.email = c.email WHERE u.id = orders.user_id
);
