-- Clone Factory root indexes v1.0 (PostgreSQL).
CREATE INDEX idx_users_role ON users (role);
CREATE INDEX idx_products_category ON products (category);
CREATE INDEX idx_orders_user_id ON orders (user_id);
CREATE INDEX idx_orders_product_id ON orders (product_id);
CREATE INDEX idx_orders_created_at ON orders (created_at);
