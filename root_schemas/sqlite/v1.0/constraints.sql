-- Clone Factory root constraints v1.0 (SQLite): unique constraints as unique indexes.
-- CHECK and FOREIGN KEY constraints are inline in root_schema.sql (see there why).
CREATE UNIQUE INDEX uq_users_email ON users (email);
CREATE UNIQUE INDEX uq_products_sku ON products (sku);
