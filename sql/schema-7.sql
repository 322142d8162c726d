-- dentbook schema, version 7: the data map, finding a patient by phone, and the second step
-- of a staff sign-in.
--
-- THE DATA MAP. Every column of every table in schema dentbook carries a comment that
-- starts with its class, 'class: <class>', one of:
--
--   personal          identifies or contacts a person, or is free text written about one:
--                     names, e-mail addresses, phone numbers, client addresses, the hash of
--                     a patient's browser cookie, the reference printed on their messages,
--                     notes and reasons, error texts that may quote an address.
--   health-revealing  says which health service a person booked, when, with whom and how it
--                     went (GDPR Art. 9 while the visit names its patient). Kept after a
--                     visit is anonymised: without its personal columns it names nobody,
--                     and the agenda, the no-overlap constraint and statistics need it.
--   payment           money and its Stripe references: kept as accounting law requires
--                     (ustawa o rachunkowości art. 74 ust. 2: five years).
--   operational       keys, references between rows (ids name no one by themselves),
--                     settings, credentials and the system's own bookkeeping.
--
-- The code reads this map, never a list of its own (sql/service-privacy.sql): erasing a
-- patient and retention null every 'personal' column of the patient's bookings and of every
-- table that references bookings; the data export carries every personal, health-revealing
-- and payment column of those rows. tests/test_privacy_datamap.py fails for any column
-- without a valid class, so a new column is classified when it is added (in the file that
-- adds it), and for a personal column that erasure could not null.

-- Phone numbers are typed in many ways (+48 600 100 200, 600-100-200): the patient is found
-- by the last nine digits (bookings.phone_key, schema-5), a plain column, so the lookup is
-- an index condition under row level security (see schema-2).
create index bookings_by_phone on dentbook.bookings (tenant_id, phone_key)
    where phone_key is not null;

-- A sign-in whose password was right and whose second factor is still to come: only the
-- SHA-256 of the browser's challenge cookie is kept, for a few minutes.
create table dentbook.staff_challenges (
    tenant_id uuid not null,
    id_hash bytea not null check (length(id_hash) = 32),
    staff_id uuid not null,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    primary key (tenant_id, id_hash),
    foreign key (tenant_id, staff_id) references dentbook.staff_accounts (tenant_id, id)
        on delete cascade
);

-- The clinic's retention job is found by kind.
create index jobs_retention on dentbook.jobs (tenant_id) where kind = 'retention' and state = 'due';

comment on column dentbook.tenants.id is 'class: operational';
comment on column dentbook.tenants.slug is 'class: operational';
comment on column dentbook.tenants.name is 'class: operational — the clinic''s published name';
comment on column dentbook.tenants.time_zone is 'class: operational';
comment on column dentbook.tenants.default_locale is 'class: operational';
comment on column dentbook.tenants.currency is 'class: operational';
comment on column dentbook.tenants.slot_step_minutes is 'class: operational';
comment on column dentbook.tenants.created_at is 'class: operational';
comment on column dentbook.tenants.address is 'class: operational — the clinic''s published address';
comment on column dentbook.tenants.phone is 'class: operational — the clinic''s published phone';
comment on column dentbook.tenants.email is 'class: operational — the clinic''s published e-mail';
comment on column dentbook.tenants.cancel_window_hours is 'class: operational';
comment on column dentbook.tenants.late_refund_percent is 'class: operational';
comment on column dentbook.tenants.reminder_hours is 'class: operational';
comment on column dentbook.tenants.retention_years is 'class: operational';
comment on column dentbook.tenants.unpaid_erasure_days is 'class: operational';
comment on column dentbook.tenants.admins_need_2fa is 'class: operational';

comment on column dentbook.doctors.tenant_id is 'class: operational';
comment on column dentbook.doctors.id is 'class: operational';
comment on column dentbook.doctors.name is 'class: personal — a doctor''s name, published on purpose';
comment on column dentbook.doctors.active is 'class: operational';
comment on column dentbook.doctors.created_at is 'class: operational';
comment on column dentbook.doctors.feed_hash is 'class: operational';

comment on column dentbook.visit_types.tenant_id is 'class: operational';
comment on column dentbook.visit_types.id is 'class: operational';
comment on column dentbook.visit_types.name_pl is 'class: operational';
comment on column dentbook.visit_types.name_en is 'class: operational';
comment on column dentbook.visit_types.duration_minutes is 'class: operational';
comment on column dentbook.visit_types.deposit_minor is 'class: operational';
comment on column dentbook.visit_types.active is 'class: operational';
comment on column dentbook.visit_types.created_at is 'class: operational';

comment on column dentbook.working_hours.tenant_id is 'class: operational';
comment on column dentbook.working_hours.doctor_id is 'class: operational';
comment on column dentbook.working_hours.weekday is 'class: operational';
comment on column dentbook.working_hours.start_time is 'class: operational';
comment on column dentbook.working_hours.end_time is 'class: operational';

comment on column dentbook.days_off.tenant_id is 'class: operational';
comment on column dentbook.days_off.doctor_id is 'class: operational';
comment on column dentbook.days_off.day is 'class: operational';

comment on column dentbook.bookings.tenant_id is 'class: operational';
comment on column dentbook.bookings.id is 'class: operational';
comment on column dentbook.bookings.doctor_id is 'class: health-revealing — with whom';
comment on column dentbook.bookings.visit_type_id is 'class: health-revealing — which treatment';
comment on column dentbook.bookings.during is 'class: health-revealing — when';
comment on column dentbook.bookings.status is 'class: health-revealing';
comment on column dentbook.bookings.hold_expires_at is 'class: operational';
comment on column dentbook.bookings.patient_name is 'class: personal';
comment on column dentbook.bookings.patient_email is 'class: personal';
comment on column dentbook.bookings.patient_phone is 'class: personal';
comment on column dentbook.bookings.client_ip is 'class: personal';
comment on column dentbook.bookings.locale is 'class: operational';
comment on column dentbook.bookings.amount_minor is 'class: payment';
comment on column dentbook.bookings.currency is 'class: payment';
comment on column dentbook.bookings.stripe_session_id is 'class: payment';
comment on column dentbook.bookings.stripe_payment_intent_id is 'class: payment';
comment on column dentbook.bookings.stripe_refund_id is 'class: payment';
comment on column dentbook.bookings.payment_processing is 'class: payment';
comment on column dentbook.bookings.paid_after_expiry is 'class: payment';
comment on column dentbook.bookings.created_at is 'class: operational';
comment on column dentbook.bookings.updated_at is 'class: operational';
comment on column dentbook.bookings.starts_at is 'class: health-revealing — when (generated from during)';
comment on column dentbook.bookings.email_key is 'class: personal (generated from patient_email)';
comment on column dentbook.bookings.phone_key is 'class: personal (generated from patient_phone)';
comment on column dentbook.bookings.holder_hash is 'class: personal — names the patient''s browser';
comment on column dentbook.bookings.kind is 'class: operational';
comment on column dentbook.bookings.source is 'class: operational';
comment on column dentbook.bookings.reference is 'class: personal — printed on the patient''s messages';
comment on column dentbook.bookings.sequence is 'class: operational';
comment on column dentbook.bookings.attendance is 'class: health-revealing';
comment on column dentbook.bookings.note is 'class: personal — free text about the patient';
comment on column dentbook.bookings.block_reason is 'class: operational — a block names no patient';
comment on column dentbook.bookings.cancel_reason is 'class: personal — free text about the patient';
comment on column dentbook.bookings.cancelled_by is 'class: health-revealing';
comment on column dentbook.bookings.privacy_version is 'class: operational';
comment on column dentbook.bookings.created_by is 'class: operational';
comment on column dentbook.bookings.anonymised_at is 'class: operational';

comment on column dentbook.audit_log.tenant_id is 'class: operational';
comment on column dentbook.audit_log.id is 'class: operational';
comment on column dentbook.audit_log.booking_id is 'class: operational';
comment on column dentbook.audit_log.from_status is 'class: health-revealing';
comment on column dentbook.audit_log.to_status is 'class: health-revealing';
comment on column dentbook.audit_log.detail is 'class: health-revealing — what happened to a visit';
comment on column dentbook.audit_log.at is 'class: health-revealing';
comment on column dentbook.audit_log.actor is 'class: health-revealing';
comment on column dentbook.audit_log.staff_id is 'class: operational';
comment on column dentbook.audit_log.action is 'class: health-revealing';
comment on column dentbook.audit_log.before is 'class: health-revealing';
comment on column dentbook.audit_log.after is 'class: health-revealing';

comment on column dentbook.webhook_events.tenant_id is 'class: operational';
comment on column dentbook.webhook_events.event_id is 'class: operational';
comment on column dentbook.webhook_events.type is 'class: operational';
comment on column dentbook.webhook_events.received_at is 'class: operational';

comment on column dentbook.staff_accounts.tenant_id is 'class: operational';
comment on column dentbook.staff_accounts.id is 'class: operational';
comment on column dentbook.staff_accounts.email is 'class: personal — a staff member''s';
comment on column dentbook.staff_accounts.password_hash is 'class: operational — a credential';
comment on column dentbook.staff_accounts.created_at is 'class: operational';
comment on column dentbook.staff_accounts.role is 'class: operational';
comment on column dentbook.staff_accounts.active is 'class: operational';
comment on column dentbook.staff_accounts.invite_hash is 'class: operational — a credential';
comment on column dentbook.staff_accounts.invite_expires_at is 'class: operational';
comment on column dentbook.staff_accounts.totp_secret is 'class: operational — a credential';
comment on column dentbook.staff_accounts.totp_last_counter is 'class: operational';
comment on column dentbook.staff_accounts.totp_enabled_at is 'class: operational';

comment on column dentbook.staff_sessions.tenant_id is 'class: operational';
comment on column dentbook.staff_sessions.id_hash is 'class: operational';
comment on column dentbook.staff_sessions.staff_id is 'class: operational';
comment on column dentbook.staff_sessions.created_at is 'class: operational';
comment on column dentbook.staff_sessions.last_seen_at is 'class: operational';
comment on column dentbook.staff_sessions.expires_at is 'class: operational';

comment on column dentbook.login_failures.tenant_id is 'class: operational';
comment on column dentbook.login_failures.id is 'class: operational';
comment on column dentbook.login_failures.email is 'class: personal — as typed at sign-in';
comment on column dentbook.login_failures.client_ip is 'class: personal';
comment on column dentbook.login_failures.at is 'class: operational';

comment on column dentbook.refunds.tenant_id is 'class: operational';
comment on column dentbook.refunds.booking_id is 'class: operational';
comment on column dentbook.refunds.amount_minor is 'class: payment';
comment on column dentbook.refunds.currency is 'class: payment';
comment on column dentbook.refunds.payment_intent is 'class: payment';
comment on column dentbook.refunds.reason is 'class: payment';
comment on column dentbook.refunds.stripe_refund_id is 'class: payment';
comment on column dentbook.refunds.created_at is 'class: payment';
comment on column dentbook.refunds.refunded_at is 'class: payment';

comment on column dentbook.jobs.tenant_id is 'class: operational';
comment on column dentbook.jobs.id is 'class: operational';
comment on column dentbook.jobs.kind is 'class: operational';
comment on column dentbook.jobs.booking_id is 'class: operational';
comment on column dentbook.jobs.due_at is 'class: operational';
comment on column dentbook.jobs.state is 'class: operational';
comment on column dentbook.jobs.attempts is 'class: operational';
comment on column dentbook.jobs.claim is 'class: operational';
comment on column dentbook.jobs.locked_until is 'class: operational';
comment on column dentbook.jobs.last_error is 'class: personal — a mail server''s error may quote the address';
comment on column dentbook.jobs.created_at is 'class: operational';
comment on column dentbook.jobs.finished_at is 'class: operational';
comment on column dentbook.jobs.ref is 'class: operational';

comment on column dentbook.visit_links.tenant_id is 'class: operational';
comment on column dentbook.visit_links.token_hash is 'class: operational — a credential; revoked on erasure';
comment on column dentbook.visit_links.booking_id is 'class: operational';
comment on column dentbook.visit_links.expires_at is 'class: operational';
comment on column dentbook.visit_links.revoked_at is 'class: operational';
comment on column dentbook.visit_links.created_at is 'class: operational';

comment on column dentbook.messages.tenant_id is 'class: operational';
comment on column dentbook.messages.id is 'class: operational';
comment on column dentbook.messages.booking_id is 'class: operational';
comment on column dentbook.messages.kind is 'class: health-revealing';
comment on column dentbook.messages.to_address is 'class: personal';
comment on column dentbook.messages.locale is 'class: operational';
comment on column dentbook.messages.sequence is 'class: operational';
comment on column dentbook.messages.state is 'class: health-revealing';
comment on column dentbook.messages.subject is 'class: health-revealing — the clinic and the visit''s time';
comment on column dentbook.messages.message_id is 'class: operational';
comment on column dentbook.messages.created_at is 'class: health-revealing';
comment on column dentbook.messages.sent_at is 'class: health-revealing';

comment on column dentbook.staff_recovery_codes.tenant_id is 'class: operational';
comment on column dentbook.staff_recovery_codes.staff_id is 'class: operational';
comment on column dentbook.staff_recovery_codes.code_hash is 'class: operational — a credential';
comment on column dentbook.staff_recovery_codes.used_at is 'class: operational';

comment on column dentbook.privacy_notices.tenant_id is 'class: operational';
comment on column dentbook.privacy_notices.version is 'class: operational';
comment on column dentbook.privacy_notices.body_pl is 'class: operational';
comment on column dentbook.privacy_notices.body_en is 'class: operational';
comment on column dentbook.privacy_notices.created_at is 'class: operational';
comment on column dentbook.privacy_notices.created_by is 'class: operational';

comment on column dentbook.staff_challenges.tenant_id is 'class: operational';
comment on column dentbook.staff_challenges.id_hash is 'class: operational';
comment on column dentbook.staff_challenges.staff_id is 'class: operational';
comment on column dentbook.staff_challenges.created_at is 'class: operational';
comment on column dentbook.staff_challenges.expires_at is 'class: operational';
