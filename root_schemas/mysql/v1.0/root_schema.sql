-- Clone Factory root schema v1.0 (MySQL 8 and MariaDB 10.11).
-- Tables and primary keys only; indexes.sql and constraints.sql follow.
CREATE TABLE users (
  id         BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  email      VARCHAR(255) NOT NULL,
  full_name  VARCHAR(255) NOT NULL,
  role       VARCHAR(20)  NOT NULL DEFAULT 'user',
  is_active  BOOLEAN      NOT NULL DEFAULT TRUE,
  created_at DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB;

CREATE TABLE products (
  id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  sku         VARCHAR(64)   NOT NULL,
  name        VARCHAR(255)  NOT NULL,
  description TEXT,
  category    VARCHAR(64)   NOT NULL,
  price       DECIMAL(12,2) NOT NULL,
  stock       INTEGER       NOT NULL DEFAULT 0,
  created_at  DATETIME      NOT NULL DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB;

CREATE TABLE orders (
  id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id     BIGINT        NOT NULL,
  product_id  BIGINT        NOT NULL,
  quantity    INTEGER       NOT NULL,
  total       DECIMAL(12,2) NOT NULL,
  status      VARCHAR(20)   NOT NULL DEFAULT 'pending',
  created_at  DATETIME      NOT NULL DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB;
