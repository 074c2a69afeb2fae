-- Finance industry template (SQLite): accounts, transactions and sample products.
CREATE TABLE accounts (
  id             INTEGER PRIMARY KEY,
  account_number VARCHAR(34)   NOT NULL,
  user_id        BIGINT        NOT NULL,
  account_type   VARCHAR(20)   NOT NULL,
  currency       VARCHAR(3)    NOT NULL DEFAULT 'USD',
  balance        DECIMAL(14,2) NOT NULL DEFAULT 0,
  opened_at      TIMESTAMP     NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT uq_accounts_account_number UNIQUE (account_number),
  CONSTRAINT ck_accounts_type CHECK (account_type IN ('checking', 'savings', 'credit', 'investment')),
  CONSTRAINT fk_accounts_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX idx_accounts_user_id ON accounts (user_id);

CREATE TABLE transactions (
  id          INTEGER PRIMARY KEY,
  account_id  BIGINT        NOT NULL,
  kind        VARCHAR(20)   NOT NULL,
  amount      DECIMAL(14,2) NOT NULL,
  memo        VARCHAR(255),
  created_at  TIMESTAMP     NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT ck_transactions_kind CHECK (kind IN ('deposit', 'withdrawal', 'transfer', 'fee')),
  CONSTRAINT ck_transactions_amount CHECK (amount <> 0),
  CONSTRAINT fk_transactions_account FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE
);
CREATE INDEX idx_transactions_account_id ON transactions (account_id);
CREATE INDEX idx_transactions_created_at ON transactions (created_at);

INSERT INTO accounts (account_number, user_id, account_type, currency, balance)
SELECT 'ACC-0000000001', u.id, 'checking', 'USD', 2500.00 FROM users u WHERE u.email = 'user@example.com';

INSERT INTO transactions (account_id, kind, amount, memo)
SELECT a.id, 'deposit', 2500.00, 'Opening deposit' FROM accounts a WHERE a.account_number = 'ACC-0000000001';

INSERT INTO products (sku, name, description, category, price, stock) VALUES
  ('FIN-LED-001', 'General Ledger Module', 'Double-entry ledger with audit trail', 'software', 900.00, 300),
  ('FIN-KYC-001', 'KYC Verification Bundle', 'One hundred identity checks', 'services', 350.00, 1000),
  ('FIN-RPT-001', 'Regulatory Reporting Pack', 'Quarterly regulatory filings', 'services', 1800.00, 50);
