-- Clone Factory migration v1.0 -> v1.1 (MySQL 8 and MariaDB 10.11).
-- Adds customers, links orders to them, backfills one customer per ordering user,
-- and adds the v1.1 indexes. The result must fingerprint exactly like a fresh v1.1.
CREATE TABLE customers (
  id         BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  email      VARCHAR(255) NOT NULL,
  full_name  VARCHAR(255) NOT NULL,
  phone      VARCHAR(32),
  created_at DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB;
ALTER TABLE customers ADD CONSTRAINT uq_customers_email UNIQUE (email);
ALTER TABLE customers ADD CONSTRAINT ck_customers_email CHECK (email LIKE '%@%');
CREATE INDEX idx_customers_created_at ON customers (created_at);

ALTER TABLE orders ADD COLUMN customer_id BIGINT;
CREATE INDEX idx_orders_customer_id ON orders (customer_id);
CREATE INDEX idx_orders_status_created_at ON orders (status, created_at);
ALTER TABLE orders ADD CONSTRAINT fk_orders_customer
  FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE SET NULL;

INSERT INTO customers (email, full_name)
SELECT u.email, u.full_name FROM users u
WHERE u.id IN (SELECT o.user_id FROM orders o);

UPDATE orders SET customer_id = (
  SELECT c.id FROM customers c JOIN users u ON u.email = c.email WHERE u.id = orders.user_id
);
