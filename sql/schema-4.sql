-- dentbook schema, version 4: what a clinic runs its day on. The patient's visit after
-- payment (e-mail outbox, the patient's own link, cancellation policy), the front desk
-- (phone bookings, blocks, attendance, roles' accounts), the audit log, and what privacy
-- needs (notices, retention settings, second factors).

-- Clinic details and policies (all editable by the clinic's admin).
alter table dentbook.tenants
    add column address text not null default '' check (length(address) <= 300),
    add column phone text not null default '' check (length(phone) <= 40),
    add column email text not null default '' check (length(email) <= 254),
    -- Cancelling (or rescheduling) until this many hours before a visit refunds it all;
    -- later, late_refund_percent of the deposit.
    add column cancel_window_hours integer not null default 24
        check (cancel_window_hours between 0 and 720),
    add column late_refund_percent integer not null default 0
        check (late_refund_percent between 0 and 100),
    -- Reminders, hours before a visit (none for a visit booked inside the offset).
    add column reminder_hours integer[] not null default '{24}'
        check (cardinality(reminder_hours) <= 5 and 0 < all (reminder_hours)
               and 720 >= all (reminder_hours)),
    -- Visits are anonymised this long after they took place; unpaid holds lose their
    -- personal data this many days after they lapsed.
    add column retention_years integer not null default 3 check (retention_years between 1 and 30),
    add column unpaid_erasure_days integer not null default 7
        check (unpaid_erasure_days between 1 and 90),
    add column admins_need_2fa boolean not null default false;

-- A doctor's private calendar feed: only the SHA-256 of its token is kept.
alter table dentbook.doctors
    add column feed_hash bytea unique check (length(feed_hash) = 32);

-- Visits and blocks share the bookings table, so one exclusion constraint keeps both from
-- overlapping: nothing is booked over a block, and no block covers an active visit.
alter table dentbook.bookings
    add column kind text not null default 'visit' check (kind in ('visit', 'block')),
    add column source text not null default 'online' check (source in ('online', 'phone', 'staff')),
    add column reference text,
    add column sequence integer not null default 0,  -- the calendar file's SEQUENCE
    add column attendance text check (attendance in ('arrived', 'no_show', 'completed')),
    add column note text check (length(note) <= 500),
    add column block_reason text check (length(block_reason) <= 200),
    add column cancel_reason text check (length(cancel_reason) <= 500),
    add column cancelled_by text check (cancelled_by in ('patient', 'clinic')),
    add column privacy_version integer,
    add column created_by uuid,
    add column anonymised_at timestamptz,
    alter column patient_name drop not null,
    alter column patient_email drop not null,
    drop constraint bookings_status_check,
    add constraint bookings_status_check check (status in (
        'pending', 'confirmed', 'expired', 'released', 'failed', 'refunded', 'cancelled')),
    drop constraint bookings_amount_minor_check,
    add constraint bookings_amount_minor_check check (amount_minor >= 0),
    -- A visit names its patient (until anonymised); a block names nobody.
    add constraint bookings_patient_check check (
        (kind = 'block' and patient_name is null and patient_email is null)
        or (kind = 'visit' and (anonymised_at is not null or patient_name is not null))),
    add constraint bookings_reference_key unique (tenant_id, reference);

create index bookings_due_for_erasure on dentbook.bookings (tenant_id, hold_expires_at)
    where anonymised_at is null and status in ('expired', 'released', 'failed');
create index bookings_by_email on dentbook.bookings (tenant_id, email_key)
    where email_key is not null;

-- The patient's own link to a visit: only the SHA-256 of its token is kept. It expires
-- some days after the visit and can be revoked.
create table dentbook.visit_links (
    tenant_id uuid not null,
    token_hash bytea not null check (length(token_hash) = 32),
    booking_id uuid not null,
    expires_at timestamptz not null,
    revoked_at timestamptz,
    created_at timestamptz not null default now(),
    primary key (tenant_id, token_hash),
    foreign key (tenant_id, booking_id) references dentbook.bookings (tenant_id, id)
);
create index visit_links_by_booking on dentbook.visit_links (tenant_id, booking_id);

-- The outbox: every message to a patient, written in the transaction of the change that
-- causes it, sent after commit by the job runner (a job of kind 'email' per message).
-- Rendered when sent, from the visit as it then is; what was sent is kept for the patient's
-- data export (subject, time, Message-ID), and the address is erased with the patient.
create table dentbook.messages (
    tenant_id uuid not null,
    id bigint generated always as identity,
    booking_id uuid not null,
    kind text not null check (kind in ('confirmation', 'processing', 'payment_failed',
                                       'reminder', 'cancellation', 'reschedule', 'refund')),
    to_address text check (length(to_address) <= 254),
    locale text not null check (locale in ('pl', 'en')),
    sequence integer not null default 0,
    state text not null default 'due' check (state in ('due', 'sent', 'failed', 'cancelled')),
    subject text,
    message_id text,
    created_at timestamptz not null default now(),
    sent_at timestamptz,
    primary key (tenant_id, id),
    foreign key (tenant_id, booking_id) references dentbook.bookings (tenant_id, id)
);
create index messages_by_booking on dentbook.messages (tenant_id, booking_id);

-- Jobs now also send messages (ref: the message's id) and run the clinic's retention.
alter table dentbook.jobs
    drop constraint jobs_kind_check,
    add constraint jobs_kind_check check (kind in ('refund', 'email', 'retention')),
    add column ref bigint;

alter table dentbook.refunds
    drop constraint refunds_reason_check,
    add constraint refunds_reason_check check (reason in ('paid_after_expiry', 'amount_mismatch',
                                                          'cancelled'));

-- The audit log: every change (of a booking, by a patient, the front desk, Stripe or the
-- system), every sign-in and sign-out, and every read of patients' data by staff. It names
-- visits and accounts by id, never a patient by name, e-mail or phone, so erasing a
-- patient never has to touch it; it is append-only (a trigger refuses UPDATE and DELETE).
alter table dentbook.booking_events rename to audit_log;
alter table dentbook.audit_log
    alter column booking_id drop not null,
    alter column to_status drop not null,
    add column actor text not null default 'system'
        check (actor in ('patient', 'staff', 'stripe', 'system')),
    add column staff_id uuid,
    add column action text not null default 'status',
    add column before jsonb,
    add column after jsonb;
create index audit_log_by_booking on dentbook.audit_log (tenant_id, booking_id);
create index audit_log_by_staff on dentbook.audit_log (tenant_id, staff_id, at);
create index audit_log_by_time on dentbook.audit_log (tenant_id, at);

-- Staff accounts: deactivated rather than deleted (the audit log names them); invited with
-- a one-time set-password link; a TOTP second factor with single-use recovery codes.
alter table dentbook.staff_accounts
    add column active boolean not null default true,
    alter column password_hash drop not null,
    add column invite_hash bytea unique check (length(invite_hash) = 32),
    add column invite_expires_at timestamptz,
    add column totp_secret text,
    add column totp_last_counter bigint,
    add column totp_enabled_at timestamptz,
    add constraint staff_accounts_password_check check (password_hash is not null
                                                        or invite_hash is not null);

create table dentbook.staff_recovery_codes (
    tenant_id uuid not null,
    staff_id uuid not null,
    code_hash text not null check (length(code_hash) = 64),
    used_at timestamptz,
    primary key (tenant_id, staff_id, code_hash),
    foreign key (tenant_id, staff_id) references dentbook.staff_accounts (tenant_id, id)
        on delete cascade
);

-- The clinic's privacy notice (GDPR Art. 13), versioned: an edit is a new version, old
-- versions are kept, and each booking records the version its patient was shown.
create table dentbook.privacy_notices (
    tenant_id uuid not null references dentbook.tenants (id),
    version integer not null check (version > 0),
    body_pl text not null check (length(body_pl) between 1 and 20000),
    body_en text not null check (length(body_en) between 1 and 20000),
    created_at timestamptz not null default now(),
    created_by uuid,
    primary key (tenant_id, version)
);
