-- Demo data for scripts/demo.sh: a tiny shop on the "old" MariaDB backend.
-- Loaded once, into database `app`, when the demo's data directory is new.
-- It exercises the column types a migration has to translate: AUTO_INCREMENT
-- keys, DATETIME, DECIMAL, ENUM, TINYINT(1) booleans, TEXT, foreign keys.

SET NAMES utf8mb4;

CREATE TABLE customers (
    id          INT UNSIGNED NOT NULL AUTO_INCREMENT,
    email       VARCHAR(190) NOT NULL,
    full_name   VARCHAR(100) NOT NULL,
    country     CHAR(2)      NOT NULL DEFAULT 'US',
    is_active   TINYINT(1)   NOT NULL DEFAULT 1,
    created_at  DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP,
    notes       TEXT         NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_customers_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE products (
    id          INT UNSIGNED  NOT NULL AUTO_INCREMENT,
    sku         VARCHAR(32)   NOT NULL,
    name        VARCHAR(120)  NOT NULL,
    price       DECIMAL(10,2) NOT NULL,
    in_stock    TINYINT(1)    NOT NULL DEFAULT 1,
    description TEXT          NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_products_sku (sku)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE orders (
    id          BIGINT UNSIGNED   NOT NULL AUTO_INCREMENT,
    customer_id INT UNSIGNED      NOT NULL,
    product_id  INT UNSIGNED      NOT NULL,
    quantity    SMALLINT UNSIGNED NOT NULL DEFAULT 1,
    unit_price  DECIMAL(10,2)     NOT NULL,
    status      ENUM('pending','paid','shipped','cancelled') NOT NULL DEFAULT 'pending',
    ordered_at  DATETIME          NOT NULL,
    shipped_at  DATETIME          NULL,
    PRIMARY KEY (id),
    KEY idx_orders_customer_time (customer_id, ordered_at),
    CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id),
    CONSTRAINT fk_orders_product  FOREIGN KEY (product_id)  REFERENCES products (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT INTO customers (email, full_name, country, is_active, created_at, notes) VALUES
    ('ada@example.com',      'Ada Lindqvist',      'SE', 1, '2023-01-04 09:12:00', NULL),
    ('bruno@example.com',    'Bruno Ferreira',     'PT', 1, '2023-01-19 14:40:10', 'Prefers email contact.'),
    ('chloe@example.com',    'Chloé Martin',       'FR', 1, '2023-02-02 08:05:33', NULL),
    ('dmitri@example.com',   'Dmitri Volkov',      'DE', 0, '2023-02-17 17:21:47', 'Account closed on request.'),
    ('emeka@example.com',    'Emeka Okafor',       'NG', 1, '2023-03-01 11:00:00', NULL),
    ('fatima@example.com',   'Fatima Zahra',       'MA', 1, '2023-03-15 19:45:02', NULL),
    ('gustav@example.com',   'Gustav Nyberg',      'NO', 1, '2023-04-03 06:30:00', 'Wholesale account.'),
    ('hana@example.com',     'Hana Sato',          'JP', 1, '2023-04-22 22:10:15', NULL),
    ('ines@example.com',     'Inés Navarro',       'ES', 1, '2023-05-09 13:13:13', NULL),
    ('jamal@example.com',    'Jamal Wright',       'US', 1, '2023-05-30 10:01:59', NULL),
    ('katja@example.com',    'Katja Horvat',       'HR', 0, '2023-06-12 16:20:00', 'Bounced email, inactive.'),
    ('liam@example.com',     'Liam O''Connor',     'IE', 1, '2023-06-28 07:47:31', NULL),
    ('mei@example.com',      'Mei Chen',           'TW', 1, '2023-07-14 12:34:56', NULL),
    ('nikos@example.com',    'Nikos Papadopoulos', 'GR', 1, '2023-08-01 18:00:00', NULL),
    ('olga@example.com',     'Olga Nowak',         'PL', 1, '2023-08-19 09:09:09', 'VIP: free shipping.'),
    ('pedro@example.com',    'Pedro Alves',        'BR', 1, '2023-09-05 21:15:42', NULL),
    ('quinn@example.com',    'Quinn Taylor',       'CA', 1, '2023-09-23 05:55:05', NULL),
    ('rania@example.com',    'Rania Haddad',       'LB', 1, '2023-10-10 15:30:30', NULL),
    ('sven@example.com',     'Sven Müller',        'CH', 1, '2023-10-29 11:11:11', NULL),
    ('tariq@example.com',    'Tariq Aziz',         'PK', 0, '2023-11-16 08:48:20', NULL),
    ('uma@example.com',      'Uma Iyer',           'IN', 1, '2023-12-02 20:02:02', NULL),
    ('viktor@example.com',   'Viktor Šimek',       'CZ', 1, '2023-12-20 10:10:10', NULL),
    ('wanjiru@example.com',  'Wanjiru Kamau',      'KE', 1, '2024-01-07 14:14:14', NULL),
    ('xavier@example.com',   'Xavier Dupont',      'BE', 1, '2024-01-25 16:45:00', 'Asked about invoices in EUR.'),
    ('yusuf@example.com',    'Yusuf Demir',        'TR', 1, '2024-02-11 12:00:00', NULL);

INSERT INTO products (sku, name, price, in_stock, description) VALUES
    ('MUG-001',  'Enamel camp mug',            12.50, 1, 'Speckled blue, 350 ml.'),
    ('MUG-002',  'Double-wall glass mug',      18.00, 1, NULL),
    ('TEA-010',  'Loose-leaf sencha, 100 g',    9.95, 1, 'First flush, from Shizuoka.'),
    ('TEA-011',  'Rooibos vanilla, 100 g',      7.40, 1, NULL),
    ('TEA-012',  'Earl Grey, 250 g',           14.20, 0, 'Back in stock next month.'),
    ('POT-100',  'Cast-iron teapot, 0.8 l',    54.00, 1, 'Hand wash only.'),
    ('POT-101',  'Glass teapot with infuser',  29.90, 1, NULL),
    ('KET-200',  'Gooseneck kettle',           79.00, 1, 'Variable temperature, 1 l.'),
    ('FIL-300',  'Paper filters (100)',         4.25, 1, NULL),
    ('FIL-301',  'Stainless mesh filter',      11.75, 1, NULL),
    ('GRD-400',  'Hand grinder',               65.50, 0, 'Ceramic burrs.'),
    ('BEA-500',  'Espresso beans, 1 kg',       24.00, 1, 'Medium roast.'),
    ('BEA-501',  'Decaf beans, 500 g',         13.60, 1, NULL),
    ('SCL-600',  'Brewing scale 0.1 g',        39.99, 1, NULL),
    ('GFT-700',  'Gift card',                  25.00, 1, 'Redeemable online; never expires.');

-- 60 orders, spread deterministically over customers, products and statuses.
INSERT INTO orders (customer_id, product_id, quantity, unit_price, status, ordered_at, shipped_at)
WITH RECURSIVE seq (n) AS (
    SELECT 1
    UNION ALL
    SELECT n + 1 FROM seq WHERE n < 60
)
SELECT
    1 + (n * 7) % 25,
    p.id,
    1 + (n * 3) % 5,
    p.price,
    ELT(1 + n % 4, 'pending', 'paid', 'shipped', 'cancelled'),
    '2024-03-01 08:00:00' + INTERVAL (n * 37) HOUR + INTERVAL (n * 13) MINUTE,
    IF(n % 4 = 2, '2024-03-01 08:00:00' + INTERVAL (n * 37 + 30) HOUR, NULL)
FROM seq
JOIN products p ON p.id = 1 + (n * 11) % 15
ORDER BY n;
