-- Accounts, their roles on sites, refresh tokens, API keys, invitations and setup links.
-- Secrets are never stored: tokens and keys by their SHA-256, passwords by Argon2id.
CREATE TABLE account (
    id             {key} PRIMARY KEY,
    email          {key} NOT NULL UNIQUE,
    password_hash  text NOT NULL,
    instance_owner boolean NOT NULL,
    created_at     timestamptz NOT NULL
);

-- One role per account and site: owner, admin or viewer.
CREATE TABLE site_member (
    site_id     {key} NOT NULL,
    account_id  {key} NOT NULL,
    role        text NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (site_id, account_id)
);

-- A refresh token is spent when used (a new one of the same family takes its place); a
-- spent one used again revokes its family.
CREATE TABLE refresh_token (
    token_hash  text PRIMARY KEY,
    family      {key} NOT NULL,
    account_id  {key} NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    spent_at    timestamptz,
    revoked_at  timestamptz
);

CREATE TABLE api_key (
    id            {key} PRIMARY KEY,
    site_id       {key} NOT NULL,
    scope         text NOT NULL,
    name          text,
    key_hash      text NOT NULL UNIQUE,
    prefix        text NOT NULL,
    created_by    {key},
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz,
    revoked_at    timestamptz
);

-- An invitation to register (a role on a site, optionally); a setup link makes the first
-- owner of an instance that has no account.
CREATE TABLE invitation (
    token_hash  text PRIMARY KEY,
    kind        text NOT NULL,
    email       {key},
    site_id     {key},
    role        text,
    created_by  {key},
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);

-- Whether a site takes events from anyone (public tracking, as browser trackers need) or
-- only with one of its write keys.
ALTER TABLE site ADD COLUMN key_required boolean DEFAULT false;
ALTER TABLE site ALTER COLUMN key_required SET NOT NULL;
