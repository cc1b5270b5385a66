-- Ordering platform backend: the relational contract that ingestion reads.
-- Portable DDL: runs unchanged on SQLite (the embedded default) and PostgreSQL.
-- Conventions of the backend being simulated:
--   * every timestamp is UTC, stored without zone ("YYYY-MM-DD HH:MM:SS.ffffff" on SQLite);
--   * money is whole Indonesian rupiah (IDR has no minor unit in practice), stored as INTEGER;
--   * rows are never hard-deleted: deleted_at marks a soft delete and bumps updated_at;
--   * every change bumps updated_at, which is what incremental extraction follows.

CREATE TABLE stores (
    store_id      INTEGER PRIMARY KEY,
    store_code    VARCHAR(16)  NOT NULL UNIQUE,
    name          VARCHAR(120) NOT NULL,
    province      VARCHAR(60)  NOT NULL,
    city          VARCHAR(60)  NOT NULL,
    opened_on     DATE         NOT NULL,
    created_at    TIMESTAMP    NOT NULL,
    updated_at    TIMESTAMP    NOT NULL,
    deleted_at    TIMESTAMP
);

CREATE TABLE menu_items (
    menu_item_id  INTEGER PRIMARY KEY,
    sku           VARCHAR(32)  NOT NULL UNIQUE,
    name          VARCHAR(120) NOT NULL,
    category      VARCHAR(40)  NOT NULL,
    price_idr     INTEGER      NOT NULL,
    is_available  BOOLEAN      NOT NULL,
    created_at    TIMESTAMP    NOT NULL,
    updated_at    TIMESTAMP    NOT NULL,
    deleted_at    TIMESTAMP
);

CREATE TABLE customers (
    customer_id              INTEGER PRIMARY KEY,
    email                    VARCHAR(200),
    phone                    VARCHAR(32),
    full_name                VARCHAR(120),
    home_store_id            INTEGER REFERENCES stores (store_id),
    preferred_platform       VARCHAR(8)   NOT NULL,  -- app | web
    acquisition_channel      VARCHAR(32)  NOT NULL,  -- organic | instagram_ads | google_search | referral | email_sms
    accepts_email_marketing  BOOLEAN      NOT NULL,
    accepts_sms_marketing    BOOLEAN      NOT NULL,
    signed_up_at             TIMESTAMP    NOT NULL,
    created_at               TIMESTAMP    NOT NULL,
    updated_at               TIMESTAMP    NOT NULL,
    deleted_at               TIMESTAMP
);

CREATE TABLE orders (
    order_id          INTEGER PRIMARY KEY,
    customer_id       INTEGER     NOT NULL REFERENCES customers (customer_id),
    store_id          INTEGER     NOT NULL REFERENCES stores (store_id),
    platform          VARCHAR(8)  NOT NULL,  -- app | web
    fulfilment_type   VARCHAR(16) NOT NULL,  -- delivery | pickup | dine_in
    status            VARCHAR(16) NOT NULL,  -- placed | preparing | completed | cancelled | refunded
    currency          CHAR(3)     NOT NULL,  -- always IDR for this chain
    subtotal_idr      INTEGER     NOT NULL,  -- sum of order_items.line_total_idr
    discount_idr      INTEGER     NOT NULL,
    delivery_fee_idr  INTEGER     NOT NULL,
    total_idr         INTEGER     NOT NULL,  -- subtotal - discount + delivery_fee
    promo_code        VARCHAR(32),
    placed_at         TIMESTAMP   NOT NULL,
    completed_at      TIMESTAMP,
    cancelled_at      TIMESTAMP,
    refunded_at       TIMESTAMP,
    created_at        TIMESTAMP   NOT NULL,
    updated_at        TIMESTAMP   NOT NULL,
    deleted_at        TIMESTAMP
);

CREATE TABLE order_items (
    order_item_id   INTEGER PRIMARY KEY,
    order_id        INTEGER NOT NULL REFERENCES orders (order_id),
    menu_item_id    INTEGER NOT NULL REFERENCES menu_items (menu_item_id),
    quantity        INTEGER NOT NULL,
    unit_price_idr  INTEGER NOT NULL,
    line_total_idr  INTEGER NOT NULL,  -- quantity * unit_price_idr
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL
);

CREATE TABLE order_feedback (
    feedback_id     INTEGER PRIMARY KEY,
    order_id        INTEGER   NOT NULL REFERENCES orders (order_id),
    customer_id     INTEGER   NOT NULL REFERENCES customers (customer_id),
    store_id        INTEGER   NOT NULL REFERENCES stores (store_id),
    menu_item_id    INTEGER   REFERENCES menu_items (menu_item_id),  -- the dish the comment is about
    food_rating     INTEGER   NOT NULL CHECK (food_rating BETWEEN 1 AND 5),
    price_rating    INTEGER   NOT NULL CHECK (price_rating BETWEEN 1 AND 5),
    service_rating  INTEGER   NOT NULL CHECK (service_rating BETWEEN 1 AND 5),
    nps_score       INTEGER   NOT NULL CHECK (nps_score BETWEEN 0 AND 10),
    comment         VARCHAR(500),
    submitted_at    TIMESTAMP NOT NULL,  -- the device's clock when the guest pressed send
    created_at      TIMESTAMP NOT NULL,  -- received by the backend; rows never change after
    updated_at      TIMESTAMP NOT NULL
);

CREATE INDEX ix_stores_updated_at      ON stores (updated_at);
CREATE INDEX ix_menu_items_updated_at  ON menu_items (updated_at);
CREATE INDEX ix_customers_updated_at   ON customers (updated_at);
CREATE INDEX ix_orders_updated_at      ON orders (updated_at);
CREATE INDEX ix_order_items_updated_at ON order_items (updated_at);
CREATE INDEX ix_order_feedback_updated_at ON order_feedback (updated_at);
