-- referral 0001: one row per account with its code, its referrer and the
-- counters the leaderboard is sorted by.

-- rev: every change of a row takes a new value, so a client holding a
-- snapshot can tell whether a live "changes" event is newer than its row.
CREATE SEQUENCE referral_rev_seq;

CREATE TABLE referral_accounts (
    user_id bigint PRIMARY KEY REFERENCES weft_users(id) ON DELETE CASCADE,
    -- 8 characters of an alphabet without 0/O/1/I/L, stored upper-case
    code text NOT NULL UNIQUE
        CHECK (code ~ '^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{8}$'),
    -- SET NULL: deleting a referrer must not be blocked by its referrals
    referrer_id bigint REFERENCES weft_users(id) ON DELETE SET NULL,
    direct integer NOT NULL DEFAULT 0 CHECK (direct >= 0),
    second integer NOT NULL DEFAULT 0 CHECK (second >= 0),
    rev bigint NOT NULL DEFAULT nextval('referral_rev_seq'),
    created_at timestamptz NOT NULL DEFAULT now(),
    -- when this account was linked to its referrer (signup or claim)
    linked_at timestamptz,
    CHECK (referrer_id IS NULL OR referrer_id <> user_id)
);

-- the downline lists and the second-level lookups walk referrer_id
CREATE INDEX referral_accounts_referrer
    ON referral_accounts (referrer_id, linked_at DESC);
