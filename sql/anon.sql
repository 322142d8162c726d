-- Anonymous level: what a patient's request may ask, for the clinic the server resolved
-- from the URL (set as the transaction's tenant). Only these functions, never a table.
-- Re-applied whenever this file changes (its functions are dropped and re-created).
--
-- Every function runs as its owner (SECURITY DEFINER) with a fixed search_path, and row
-- level security still applies to it (FORCE), so it sees only the clinic the calling
-- transaction set in app.tenant_id. Each function's grant stands beside it.

drop function if exists dentbook.public_clinics, dentbook.public_clinic, dentbook.public_doctors,
    dentbook.public_visit_types, dentbook.public_working_hours, dentbook.public_days_off,
    dentbook.public_busy, dentbook.public_booking, dentbook.public_own_holds cascade;

grant execute on function dentbook.current_tenant() to dentbook_anon, dentbook_staff, dentbook_service;

create function dentbook.public_clinics()
    returns table (slug text, name text)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$ select slug, name from tenants order by name $$;
grant execute on function dentbook.public_clinics() to dentbook_anon, dentbook_staff, dentbook_service;

create function dentbook.public_clinic(p_slug text)
    returns table (id uuid, slug text, name text, time_zone text, default_locale text,
                   currency text, slot_step_minutes integer, address text, phone text,
                   email text, cancel_window_hours integer, late_refund_percent integer)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select id, slug, name, time_zone, default_locale, currency, slot_step_minutes, address,
           phone, email, cancel_window_hours, late_refund_percent
    from tenants where slug = p_slug
$$;
grant execute on function dentbook.public_clinic(text) to dentbook_anon, dentbook_staff, dentbook_service;

create function dentbook.public_doctors()
    returns table (id uuid, name text)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$ select id, name from doctors where active order by name $$;
grant execute on function dentbook.public_doctors() to dentbook_anon, dentbook_staff, dentbook_service;

create function dentbook.public_visit_types()
    returns table (id uuid, name_pl text, name_en text, duration_minutes integer,
                   deposit_minor integer)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select id, name_pl, name_en, duration_minutes, deposit_minor
    from visit_types where active order by duration_minutes, name_en
$$;
grant execute on function dentbook.public_visit_types() to dentbook_anon, dentbook_staff, dentbook_service;

create function dentbook.public_working_hours(p_doctor uuid)
    returns table (weekday smallint, start_time time, end_time time)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select weekday, start_time, end_time from working_hours
    where doctor_id = p_doctor order by weekday, start_time
$$;
grant execute on function dentbook.public_working_hours(uuid) to dentbook_anon, dentbook_staff, dentbook_service;

create function dentbook.public_days_off(p_doctor uuid, p_from date, p_to date)
    returns table (day date)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$ select day from days_off where doctor_id = p_doctor and day between p_from and p_to $$;
grant execute on function dentbook.public_days_off(uuid, date, date) to dentbook_anon, dentbook_staff, dentbook_service;

-- Time taken on a doctor's calendar: intervals only, nothing about who took them.
-- A hold whose time has run out counts as free even before anyone expires it; a
-- hold's expiry is given so the server can announce the slot free at that instant.
create function dentbook.public_busy(p_doctor uuid, p_from timestamptz, p_to timestamptz)
    returns table (during tstzrange, hold_expires_at timestamptz)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select during, case when status = 'pending' then hold_expires_at end from bookings
    where doctor_id = p_doctor
      and status in ('pending', 'confirmed')
      and starts_at >= p_from - dentbook.longest_visit() and starts_at < p_to  -- the index
      and (status = 'confirmed' or hold_expires_at > now())
      and during && tstzrange(p_from, p_to, '[)')
$$;
grant execute on function dentbook.public_busy(uuid, timestamptz, timestamptz) to dentbook_anon, dentbook_staff, dentbook_service;

-- What the patient holding the booking's unguessable id may see on the return page.
create function dentbook.public_booking(p_booking uuid)
    returns table (id uuid, doctor_name text, visit_name_pl text, visit_name_en text,
                   starts_at timestamptz, ends_at timestamptz, status text,
                   hold_lapsed boolean, payment_processing boolean, paid_after_expiry boolean,
                   amount_minor integer, currency text, stripe_session_id text,
                   hold_expires_at timestamptz, reference text)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select b.id, d.name, v.name_pl, v.name_en, lower(b.during), upper(b.during), b.status,
           b.status = 'pending' and b.hold_expires_at <= now(), b.payment_processing,
           b.paid_after_expiry, b.amount_minor, b.currency, b.stripe_session_id, b.hold_expires_at,
           b.reference
    from bookings b
    join doctors d on d.tenant_id = b.tenant_id and d.id = b.doctor_id
    join visit_types v on v.tenant_id = b.tenant_id and v.id = b.visit_type_id
    where b.id = p_booking
$$;
grant execute on function dentbook.public_booking(uuid) to dentbook_anon, dentbook_staff, dentbook_service;

-- The unpaid holds of one browser (the SHA-256 of its holder cookie) at this clinic, so a
-- patient who left Checkout and came back is offered their own hold, not told it is taken.
create function dentbook.public_own_holds(p_holder bytea)
    returns table (id uuid, doctor_id uuid, doctor_name text, starts_at timestamptz,
                   hold_expires_at timestamptz, stripe_session_id text)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select b.id, b.doctor_id, d.name, b.starts_at, b.hold_expires_at, b.stripe_session_id
    from bookings b join doctors d on d.tenant_id = b.tenant_id and d.id = b.doctor_id
    where b.holder_hash = p_holder and b.status = 'pending' and b.hold_expires_at > now()
      and not b.payment_processing
    order by b.starts_at
$$;
grant execute on function dentbook.public_own_holds(bytea) to dentbook_anon, dentbook_service;
revoke execute on all functions in schema dentbook from public;
