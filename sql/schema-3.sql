-- dentbook schema, version 3: who holds a slot, one address per mailbox, money owed back,
-- and work to do after a commit.

-- The hold limit counts addresses, not spellings: jan+1@x.pl and Jan@X.pl are one mailbox.
-- Immutable, so generated columns and indexes may use it.
create function dentbook.email_key(p_email text) returns text
    language sql immutable parallel safe strict
as $$ select regexp_replace(lower(p_email), '\+[^@]*@', '@') $$;

drop index dentbook.bookings_holds_by_email;
alter table dentbook.bookings drop column email_key;
alter table dentbook.bookings
    add column email_key text generated always as (dentbook.email_key(patient_email)) stored;
create index bookings_holds_by_email on dentbook.bookings (tenant_id, email_key, hold_expires_at)
    where status = 'pending';

-- The browser that made a hold: SHA-256 of a random value in its cookie. Only that browser
-- may resume the hold (re-submit the form, go back to Checkout); knowing the patient's
-- e-mail is not enough.
alter table dentbook.bookings add column holder_hash bytea check (length(holder_hash) = 32);

-- Money owed back to a patient, at most once per booking (the key), made through Stripe's
-- Refund API after the commit that decided it, by a job (below) with an idempotency key
-- per booking: a crash between the two neither loses nor doubles it.
create table dentbook.refunds (
    tenant_id uuid not null,
    booking_id uuid not null,
    amount_minor integer not null check (amount_minor > 0),
    currency text not null check (currency ~ '^[a-z]{3}$'),
    payment_intent text not null,
    reason text not null check (reason in ('paid_after_expiry', 'amount_mismatch')),
    stripe_refund_id text,
    created_at timestamptz not null default now(),
    refunded_at timestamptz,
    primary key (tenant_id, booking_id),
    foreign key (tenant_id, booking_id) references dentbook.bookings (tenant_id, id),
    check ((stripe_refund_id is null) = (refunded_at is null))
);

-- Work to do after a commit, at a time, exactly once across processes: refunds now, later
-- e-mails, reminders and retention. Written in the transaction that causes it (a rolled
-- back change leaves no job), claimed with FOR UPDATE SKIP LOCKED for a lease, retried with
-- back-off, given up after the configured attempts with the last error kept.
create table dentbook.jobs (
    tenant_id uuid not null references dentbook.tenants (id),
    id bigint generated always as identity,
    kind text not null check (kind in ('refund')),
    booking_id uuid,
    due_at timestamptz not null default now(),
    state text not null default 'due' check (state in ('due', 'done', 'failed')),
    attempts integer not null default 0,
    -- A claim: the worker that holds it until locked_until (then anyone may take it again).
    claim uuid,
    locked_until timestamptz,
    last_error text,
    created_at timestamptz not null default now(),
    finished_at timestamptz,
    primary key (tenant_id, id),
    foreign key (tenant_id, booking_id) references dentbook.bookings (tenant_id, id)
);

create index jobs_due on dentbook.jobs (due_at) where state = 'due';
create index jobs_by_booking on dentbook.jobs (tenant_id, booking_id);

-- Staff roles (viewer < reception < admin), checked by the web layer's guards and again by
-- the SQL functions that write. Accounts made before roles existed were the clinics' own.
alter table dentbook.staff_accounts
    add column role text not null default 'admin' check (role in ('viewer', 'reception', 'admin'));
alter table dentbook.staff_accounts alter column role set default 'viewer';
