-- Clone Factory initial data v1.1: the rows every tenant starts with.
INSERT INTO users (email, full_name, role) VALUES
  ('admin@example.com', 'Tenant Administrator', 'admin'),
  ('analyst@example.com', 'Reporting Analyst', 'analyst'),
  ('user@example.com', 'Standard User', 'user');

INSERT INTO products (sku, name, description, category, price, stock) VALUES
  ('GEN-0001', 'Onboarding Package', 'Guided onboarding for new accounts', 'services', 499.00, 100),
  ('GEN-0002', 'Support Plan', 'Twelve months of business-hours support', 'services', 1200.00, 100);

INSERT INTO customers (email, full_name, phone) VALUES
  ('user@example.com', 'Standard User', NULL);

INSERT INTO orders (user_id, product_id, quantity, total, status, customer_id)
SELECT u.id, p.id, 1, p.price, 'paid', c.id
FROM users u
CROSS JOIN products p
JOIN customers c ON c.email = u.email
WHERE u.email = 'user@example.com' AND p.sku = 'GEN-0001';
