-- Technology industry template (MySQL 8 and MariaDB 10.11): software licences and sample products.
CREATE TABLE software_licenses (
  id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  product_id  BIGINT       NOT NULL,
  license_key VARCHAR(64)  NOT NULL,
  seats       INTEGER      NOT NULL,
  status      VARCHAR(20)  NOT NULL DEFAULT 'active',
  expires_at  DATE,
  created_at  DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT uq_software_licenses_key UNIQUE (license_key),
  CONSTRAINT ck_software_licenses_seats CHECK (seats > 0),
  CONSTRAINT ck_software_licenses_status CHECK (status IN ('active', 'suspended', 'expired')),
  KEY idx_software_licenses_product_id (product_id),
  CONSTRAINT fk_software_licenses_product FOREIGN KEY (product_id) REFERENCES products (id) ON DELETE RESTRICT
) ENGINE=InnoDB;
CREATE INDEX idx_software_licenses_expires_at ON software_licenses (expires_at);

INSERT INTO products (sku, name, description, category, price, stock) VALUES
  ('TECH-IDE-001', 'Developer IDE Licence', 'Annual per-seat IDE licence', 'software', 199.00, 1000),
  ('TECH-CI-001', 'CI Minutes Pack', 'Ten thousand build minutes', 'services', 80.00, 5000),
  ('TECH-MON-001', 'Observability Suite', 'Metrics, logs and traces per host', 'software', 45.00, 2000);

INSERT INTO software_licenses (product_id, license_key, seats, status, expires_at)
SELECT p.id, 'LIC-IDE-0001', 25, 'active', '2027-12-31' FROM products p WHERE p.sku = 'TECH-IDE-001';
