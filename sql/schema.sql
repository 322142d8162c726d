-- dentbook schema, version 1. Applied once by `dentbook migrate` (recorded in
-- dentbook_meta.migrations); later changes go in new numbered files, never here.
--
-- Every table holds clinic data and carries tenant_id. Keys and foreign keys include
-- tenant_id, so a row can only ever point at rows of its own clinic, and because
-- constraint checks bypass row level security, no constraint can reveal another
-- clinic's rows.

create extension if not exists btree_gist;

create schema dentbook;

create table dentbook.tenants (
    id uuid primary key default gen_random_uuid(),
    slug text not null unique
        check (slug ~ '^[a-z0-9]([a-z0-9-]{0,48}[a-z0-9])?$'),
    name text not null check (length(name) between 1 and 200),
    -- Validated by using it: an unknown zone name makes the expression fail.
    time_zone text not null default 'Europe/Warsaw'
        check ((timestamptz '2000-01-01 00:00+00' at time zone time_zone) is not null),
    default_locale text not null default 'pl' check (default_locale in ('pl', 'en')),
    currency text not null default 'pln' check (currency ~ '^[a-z]{3}$'),
    slot_step_minutes integer not null default 30 check (slot_step_minutes between 5 and 240),
    created_at timestamptz not null default now()
);

create table dentbook.doctors (
    tenant_id uuid not null references dentbook.tenants (id),
    id uuid not null default gen_random_uuid(),
    name text not null check (length(name) between 1 and 200),
    active boolean not null default true,
    created_at timestamptz not null default now(),
    primary key (tenant_id, id),
    unique (tenant_id, name)
);

create table dentbook.visit_types (
    tenant_id uuid not null references dentbook.tenants (id),
    id uuid not null default gen_random_uuid(),
    name_pl text not null check (length(name_pl) between 1 and 200),
    name_en text not null check (length(name_en) between 1 and 200),
    duration_minutes integer not null check (duration_minutes between 5 and 480),
    -- Stripe's smallest charge is about 2 PLN / 0.50 EUR; a deposit is always charged.
    deposit_minor integer not null check (deposit_minor between 200 and 10000000),
    active boolean not null default true,
    created_at timestamptz not null default now(),
    primary key (tenant_id, id),
    unique (tenant_id, name_en)
);

-- Weekly working hours per doctor, in the clinic's local wall-clock time.
create table dentbook.working_hours (
    tenant_id uuid not null,
    doctor_id uuid not null,
    weekday smallint not null check (weekday between 1 and 7), -- ISO: 1 = Monday
    start_time time not null,
    end_time time not null,
    primary key (tenant_id, doctor_id, weekday, start_time),
    foreign key (tenant_id, doctor_id) references dentbook.doctors (tenant_id, id),
    check (start_time < end_time)
);

create table dentbook.days_off (
    tenant_id uuid not null,
    doctor_id uuid not null,
    day date not null,
    primary key (tenant_id, doctor_id, day),
    foreign key (tenant_id, doctor_id) references dentbook.doctors (tenant_id, id)
);

create table dentbook.bookings (
    tenant_id uuid not null,
    id uuid not null default gen_random_uuid(),
    doctor_id uuid not null,
    visit_type_id uuid not null,
    during tstzrange not null
        check (not isempty(during) and lower_inc(during) and not upper_inc(during)
               and not lower_inf(during) and not upper_inf(during)),
    status text not null default 'pending'
        check (status in ('pending', 'confirmed', 'expired', 'released', 'failed', 'refunded')),
    hold_expires_at timestamptz not null,
    patient_name text not null check (length(patient_name) between 1 and 200),
    patient_email text not null check (length(patient_email) between 3 and 254),
    patient_phone text check (length(patient_phone) <= 40),
    client_ip inet,
    locale text not null default 'pl' check (locale in ('pl', 'en')),
    amount_minor integer not null check (amount_minor > 0),
    currency text not null check (currency ~ '^[a-z]{3}$'),
    stripe_session_id text,
    stripe_payment_intent_id text,
    stripe_refund_id text,
    -- The Checkout Session completed but the money has not arrived yet (bank transfer).
    payment_processing boolean not null default false,
    -- Money arrived after the hold had lapsed or was released: refunded automatically.
    paid_after_expiry boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (tenant_id, id),
    unique (tenant_id, stripe_session_id),
    foreign key (tenant_id, doctor_id) references dentbook.doctors (tenant_id, id),
    foreign key (tenant_id, visit_type_id) references dentbook.visit_types (tenant_id, id),
    -- G1: no two active bookings of one doctor overlap, whatever their lengths.
    constraint bookings_no_overlap exclude using gist (
        tenant_id with =, doctor_id with =, during with &&
    ) where (status in ('pending', 'confirmed')),
    check (status <> 'refunded' or stripe_refund_id is not null)
);

create index bookings_active_by_doctor on dentbook.bookings using gist (tenant_id, doctor_id, during)
    where status in ('pending', 'confirmed');
create index bookings_upcoming on dentbook.bookings (tenant_id, lower(during));
create index bookings_holds_by_email on dentbook.bookings (tenant_id, lower(patient_email))
    where status = 'pending';
create index bookings_holds_by_ip on dentbook.bookings (tenant_id, client_ip)
    where status = 'pending';

-- Append-only trail of every booking state change (written by a trigger).
create table dentbook.booking_events (
    tenant_id uuid not null,
    id bigint generated always as identity,
    booking_id uuid not null,
    from_status text,
    to_status text not null,
    detail text,
    at timestamptz not null default clock_timestamp(),
    primary key (tenant_id, id),
    foreign key (tenant_id, booking_id) references dentbook.bookings (tenant_id, id)
);

-- Stripe event ids already processed, so a replayed delivery changes nothing.
create table dentbook.webhook_events (
    tenant_id uuid not null references dentbook.tenants (id),
    event_id text not null,
    type text not null,
    received_at timestamptz not null default now(),
    primary key (tenant_id, event_id)
);

create table dentbook.staff_accounts (
    tenant_id uuid not null references dentbook.tenants (id),
    id uuid not null default gen_random_uuid(),
    email text not null check (length(email) between 3 and 254 and email = lower(email)),
    password_hash text not null,
    created_at timestamptz not null default now(),
    primary key (tenant_id, id),
    unique (tenant_id, email)
);

-- Server-side staff sessions; only a SHA-256 of the cookie's random id is stored.
create table dentbook.staff_sessions (
    tenant_id uuid not null,
    id_hash bytea not null check (length(id_hash) = 32),
    staff_id uuid not null,
    created_at timestamptz not null default now(),
    last_seen_at timestamptz not null default now(),
    expires_at timestamptz not null,
    primary key (tenant_id, id_hash),
    foreign key (tenant_id, staff_id) references dentbook.staff_accounts (tenant_id, id)
        on delete cascade
);

-- Failed sign-in attempts, for throttling per account and per client address.
create table dentbook.login_failures (
    tenant_id uuid not null references dentbook.tenants (id),
    id bigint generated always as identity,
    email text not null,
    client_ip inet,
    at timestamptz not null default now(),
    primary key (tenant_id, id)
);

create index login_failures_recent on dentbook.login_failures (tenant_id, at);
