-- Healthcare industry template (SQLite): procedures catalogue and sample products.
CREATE TABLE medical_procedures (
  id                  INTEGER PRIMARY KEY,
  code                VARCHAR(20)   NOT NULL,
  name                VARCHAR(255)  NOT NULL,
  category            VARCHAR(64)   NOT NULL,
  duration_minutes    INTEGER       NOT NULL,
  price               DECIMAL(12,2) NOT NULL,
  requires_specialist BOOLEAN       NOT NULL DEFAULT FALSE,
  created_at          TIMESTAMP     NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT uq_medical_procedures_code UNIQUE (code),
  CONSTRAINT ck_medical_procedures_duration CHECK (duration_minutes > 0),
  CONSTRAINT ck_medical_procedures_price CHECK (price >= 0)
);
CREATE INDEX idx_medical_procedures_category ON medical_procedures (category);

INSERT INTO medical_procedures (code, name, category, duration_minutes, price, requires_specialist) VALUES
  ('CPT-99213', 'Office visit, established patient', 'consultation', 20, 95.00, FALSE),
  ('CPT-93000', 'Electrocardiogram with interpretation', 'cardiology', 15, 60.00, FALSE),
  ('CPT-71046', 'Chest X-ray, two views', 'radiology', 30, 120.00, FALSE),
  ('CPT-45378', 'Diagnostic colonoscopy', 'gastroenterology', 60, 1150.00, TRUE);

INSERT INTO products (sku, name, description, category, price, stock) VALUES
  ('HC-EHR-001', 'Electronic Health Record Seat', 'Per-clinician EHR licence', 'software', 150.00, 500),
  ('HC-TEL-001', 'Telehealth Session Pack', 'Fifty video consultations', 'services', 400.00, 200),
  ('HC-MON-001', 'Remote Patient Monitor', 'Connected vitals monitor', 'devices', 249.99, 75);
