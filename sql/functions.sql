-- The narrow, audited functions the server calls, and the triggers on bookings.
-- Re-applied whenever this file changes (functions are dropped and re-created).
--
-- Every function runs as its owner (SECURITY DEFINER) with a fixed search_path, and
-- row level security still applies to it (FORCE), so it sees only the clinic the
-- calling transaction set in app.tenant_id. EXECUTE is granted per trust level.

drop function if exists dentbook.public_clinics, dentbook.public_clinic, dentbook.public_doctors,
    dentbook.public_visit_types, dentbook.public_working_hours, dentbook.public_days_off,
    dentbook.public_busy, dentbook.public_booking, dentbook.slot_is_offered, dentbook.hold_slot,
    dentbook.attach_checkout_session, dentbook.release_hold, dentbook.apply_payment_event,
    dentbook.complete_refund, dentbook.record_webhook_event, dentbook.lock_calendar cascade;

-- Anonymous level ---------------------------------------------------------------

create function dentbook.public_clinics()
    returns table (slug text, name text)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$ select slug, name from tenants order by name $$;

create function dentbook.public_clinic(p_slug text)
    returns table (id uuid, slug text, name text, time_zone text, default_locale text,
                   currency text, slot_step_minutes integer)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select id, slug, name, time_zone, default_locale, currency, slot_step_minutes
    from tenants where slug = p_slug
$$;

create function dentbook.public_doctors()
    returns table (id uuid, name text)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$ select id, name from doctors where active order by name $$;

create function dentbook.public_visit_types()
    returns table (id uuid, name_pl text, name_en text, duration_minutes integer,
                   deposit_minor integer)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select id, name_pl, name_en, duration_minutes, deposit_minor
    from visit_types where active order by duration_minutes, name_en
$$;

create function dentbook.public_working_hours(p_doctor uuid)
    returns table (weekday smallint, start_time time, end_time time)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select weekday, start_time, end_time from working_hours
    where doctor_id = p_doctor order by weekday, start_time
$$;

create function dentbook.public_days_off(p_doctor uuid, p_from date, p_to date)
    returns table (day date)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$ select day from days_off where doctor_id = p_doctor and day between p_from and p_to $$;

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

-- What the patient holding the booking's unguessable id may see on the return page.
create function dentbook.public_booking(p_booking uuid)
    returns table (id uuid, doctor_name text, visit_name_pl text, visit_name_en text,
                   starts_at timestamptz, ends_at timestamptz, status text,
                   hold_lapsed boolean, payment_processing boolean, paid_after_expiry boolean,
                   amount_minor integer, currency text, stripe_session_id text)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select b.id, d.name, v.name_pl, v.name_en, lower(b.during), upper(b.during), b.status,
           b.status = 'pending' and b.hold_expires_at <= now(), b.payment_processing,
           b.paid_after_expiry, b.amount_minor, b.currency, b.stripe_session_id
    from bookings b
    join doctors d on d.tenant_id = b.tenant_id and d.id = b.doctor_id
    join visit_types v on v.tenant_id = b.tenant_id and v.id = b.visit_type_id
    where b.id = p_booking
$$;

-- Whether an interval is a slot the clinic offers: on the doctor's step grid, inside
-- one working-hours range of its local day (DST-correct: wall-clock times are turned
-- into instants in the clinic's zone), not on a day off, and not too soon.
create function dentbook.slot_is_offered(p_doctor uuid, p_during tstzrange, p_min_notice interval)
    returns boolean
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    with clinic as (
        select t.time_zone as tz, t.slot_step_minutes * 60 as step,
               (lower(p_during) at time zone t.time_zone)::date as local_day
        from tenants t where t.id = dentbook.current_tenant()
    )
    select lower(p_during) >= now() + p_min_notice
       and not exists (select from days_off o, clinic c
                       where o.doctor_id = p_doctor and o.day = c.local_day)
       and exists (
           select from working_hours wh, clinic c,
                lateral (select (c.local_day + wh.start_time) at time zone c.tz as opens,
                                (c.local_day + wh.end_time) at time zone c.tz as closes) h
           where wh.doctor_id = p_doctor
             and wh.weekday = extract(isodow from c.local_day)
             and lower(p_during) >= h.opens
             and upper(p_during) <= h.closes
             and mod(extract(epoch from lower(p_during) - h.opens)::bigint, c.step) = 0)
$$;

-- Service level -------------------------------------------------------------------

-- Every write that puts a row version into the exclusion constraint's index (a hold,
-- writing its session id, confirming it) first takes this lock for the doctor. The
-- constraint alone guarantees no overlap; the lock only stops racing writers from
-- waiting on each other inside the constraint check, which PostgreSQL resolves by
-- aborting one of them as a deadlock after a second. Holds for one doctor queue; the
-- loser of a race finds the winner committed and fails at once with 23P01.
create function dentbook.lock_calendar(p_doctor uuid) returns void
    language sql volatile set search_path = pg_catalog
as $$ select pg_advisory_xact_lock(hashtextextended('dentbook-calendar:' || p_doctor::text, 0)) $$;

-- Hold a slot for a patient: one transaction, the exclusion constraint decides races.
-- Raises SQLSTATE DBK01 (not an offered slot, or beyond the booking window p_window), DBK02 (too many holds for this e-mail),
-- DBK03 (too many holds from this client), DBK04 (unknown doctor or visit type),
-- 23P01 (slot taken).
create function dentbook.hold_slot(
    p_doctor uuid, p_visit_type uuid, p_start timestamptz,
    p_name text, p_email text, p_phone text, p_ip inet, p_locale text,
    p_hold interval, p_min_notice interval, p_window interval,
    p_max_per_email integer, p_max_per_ip integer)
    returns table (booking_id uuid, starts_at timestamptz, ends_at timestamptz,
                   hold_expires_at timestamptz, amount_minor integer, currency text,
                   reused boolean, stripe_session_id text)
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_tenant uuid := dentbook.current_tenant();
    v_visit visit_types;
    v_currency text;
    v_during tstzrange;
begin
    select * into v_visit from visit_types v where v.id = p_visit_type and v.active;
    if not found or not exists (select from doctors d where d.id = p_doctor and d.active) then
        raise exception 'unknown doctor or visit type' using errcode = 'DBK04';
    end if;
    select t.currency into v_currency from tenants t where t.id = v_tenant;
    v_during := tstzrange(p_start, p_start + make_interval(mins => v_visit.duration_minutes), '[)');
    if p_start > now() + p_window or not dentbook.slot_is_offered(p_doctor, v_during, p_min_notice) then
        raise exception 'not an offered slot' using errcode = 'DBK01';
    end if;

    -- Fast refusal: time another patient already holds (committed, not lapsed) is taken
    -- whatever happens next, so say so without queueing for the calendar lock behind
    -- everyone else racing for it. Only a refusal is decided here; a hold is still
    -- decided by the exclusion constraint below.
    if exists (select from bookings b
               where b.doctor_id = p_doctor and b.status in ('pending', 'confirmed')
                 and b.starts_at >= p_start - dentbook.longest_visit()
                 and b.starts_at < upper(v_during) and b.during && v_during
                 and (b.status = 'confirmed'
                      or (b.hold_expires_at > now() and b.email_key <> lower(p_email)))) then
        raise exception 'slot taken' using errcode = 'exclusion_violation';
    end if;

    perform dentbook.lock_calendar(p_doctor);

    -- The same patient asking again for the very slot they hold (a double click, the
    -- back button): give them their hold back instead of a "taken" against themselves.
    return query
    select b.id, lower(b.during), upper(b.during), b.hold_expires_at, b.amount_minor,
           b.currency, true, b.stripe_session_id
    from bookings b
    where b.doctor_id = p_doctor and b.visit_type_id = p_visit_type and b.during = v_during
      and b.status = 'pending' and b.hold_expires_at > now() and not b.payment_processing
      and b.email_key = lower(p_email);
    if found then
        return;
    end if;

    -- Just-in-time expiry: lapsed holds on this interval give way, in this transaction.
    perform set_config('app.audit_detail', 'hold lapsed', true);
    update bookings b set status = 'expired'
    where b.doctor_id = p_doctor and b.status = 'pending' and b.hold_expires_at <= now()
      and b.starts_at >= p_start - dentbook.longest_visit() and b.starts_at < upper(v_during)
      and b.during && v_during;

    -- The exclusion constraint decides any race for the slot right here.
    perform set_config('app.audit_detail', 'held', true);
    insert into bookings as b (tenant_id, doctor_id, visit_type_id, during, hold_expires_at,
                               patient_name, patient_email, patient_phone, client_ip, locale,
                               amount_minor, currency)
    values (v_tenant, p_doctor, p_visit_type, v_during, now() + p_hold,
            p_name, p_email, nullif(p_phone, ''), p_ip, p_locale,
            v_visit.deposit_minor, v_currency)
    returning b.id, lower(b.during), upper(b.during), b.hold_expires_at, b.amount_minor, b.currency,
              false, null::text
    into booking_id, starts_at, ends_at, hold_expires_at, amount_minor, currency, reused,
         stripe_session_id;

    -- Limits, counted after our own insert under a lock per e-mail and per client, so
    -- concurrent holds from one patient are counted exactly (the lock is taken after
    -- the insert so that it never decides the race for a slot).
    perform pg_advisory_xact_lock(hashtextextended('hold-email:' || v_tenant || lower(p_email), 0));
    if (select count(*) from bookings b where b.status = 'pending' and b.hold_expires_at > now()
        and b.email_key = lower(p_email)) > p_max_per_email then
        raise exception 'too many holds for this e-mail' using errcode = 'DBK02';
    end if;
    if p_ip is not null then
        perform pg_advisory_xact_lock(hashtextextended('hold-ip:' || v_tenant || host(p_ip), 0));
        if (select count(*) from bookings b where b.status = 'pending'
            and b.hold_expires_at > now() and b.client_ip = p_ip) > p_max_per_ip then
            raise exception 'too many holds from this client' using errcode = 'DBK03';
        end if;
    end if;
    return next;
end
$$;

create function dentbook.attach_checkout_session(p_booking uuid, p_session text)
    returns boolean
    language sql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select dentbook.lock_calendar(doctor_id) from bookings where id = p_booking;
    with u as (
        update bookings set stripe_session_id = p_session, updated_at = now()
        where id = p_booking and status = 'pending' and stripe_session_id is null
        returning 1)
    select exists (select from u)
$$;

-- Give a hold back (patient cancelled, or Checkout could not be opened). Returns the
-- Checkout Session to expire, or nothing when there was no pending hold to release.
create function dentbook.release_hold(p_booking uuid, p_reason text)
    returns table (stripe_session_id text)
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
begin
    perform set_config('app.audit_detail', p_reason, true);
    return query
    update bookings b set status = 'released', updated_at = now()
    where b.id = p_booking and b.status = 'pending' and not b.payment_processing
    returning b.stripe_session_id;
end
$$;

-- Record a Stripe event id; false when it was already processed (a replay).
create function dentbook.record_webhook_event(p_event_id text, p_type text)
    returns boolean
    language sql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    with i as (
        insert into webhook_events (tenant_id, event_id, type)
        values (dentbook.current_tenant(), p_event_id, p_type)
        on conflict do nothing returning 1)
    select exists (select from i)
$$;

-- Apply what Stripe told us about a booking's Checkout Session, as a guarded
-- transition on the locked booking row. p_kind: 'paid', 'processing', 'failed' or
-- 'expired'. Returns the outcome: 'confirmed', 'processing', 'released', 'refund'
-- (money arrived for a hold that is no longer ours: the caller refunds, then calls
-- complete_refund in the same transaction) or 'noop'.
create function dentbook.apply_payment_event(
    p_booking uuid, p_session text, p_kind text, p_payment_intent text, p_detail text,
    p_processing_hold interval)
    returns table (outcome text, payment_intent text, amount_minor integer, currency text)
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    b bookings;
begin
    perform dentbook.lock_calendar(x.doctor_id) from bookings x where x.id = p_booking;
    select * into b from bookings x
    where x.id = p_booking and (x.stripe_session_id = p_session or x.stripe_session_id is null)
    for update;
    if not found then
        return query select 'noop'::text, null::text, null::integer, null::text;
        return;
    end if;
    perform set_config('app.audit_detail', p_detail, true);

    if b.status = 'pending' and b.hold_expires_at <= now() then
        -- The hold lapsed before this news arrived: it is not ours to fill any more.
        update bookings set status = 'expired', updated_at = now() where id = b.id;
        b.status := 'expired';
    end if;

    if p_kind = 'paid' then
        if b.status = 'pending' then
            update bookings set status = 'confirmed', payment_processing = false,
                stripe_payment_intent_id = p_payment_intent, updated_at = now()
            where id = b.id;
            return query select 'confirmed'::text, p_payment_intent, b.amount_minor, b.currency;
        elsif b.status in ('expired', 'released', 'failed') then
            update bookings set stripe_payment_intent_id = p_payment_intent, updated_at = now()
            where id = b.id;
            return query select 'refund'::text, p_payment_intent, b.amount_minor, b.currency;
        else
            return query select 'noop'::text, null::text, null::integer, null::text;
        end if;
    elsif p_kind = 'processing' and b.status = 'pending' and not b.payment_processing then
        update bookings set payment_processing = true, stripe_payment_intent_id = p_payment_intent,
            hold_expires_at = greatest(hold_expires_at, least(now() + p_processing_hold, lower(during))),
            updated_at = now()
        where id = b.id;
        return query select 'processing'::text, p_payment_intent, b.amount_minor, b.currency;
    elsif p_kind = 'failed' and b.status = 'pending' then
        update bookings set status = 'failed', payment_processing = false, updated_at = now()
        where id = b.id;
        return query select 'released'::text, null::text, null::integer, null::text;
    elsif p_kind = 'expired' and b.status = 'pending' and not b.payment_processing then
        update bookings set status = 'expired', updated_at = now() where id = b.id;
        return query select 'released'::text, null::text, null::integer, null::text;
    else
        return query select 'noop'::text, null::text, null::integer, null::text;
    end if;
end
$$;

-- The refund went through: the booking ends refunded, exactly once.
create function dentbook.complete_refund(p_booking uuid, p_refund_id text)
    returns boolean
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
begin
    perform set_config('app.audit_detail', 'paid after expiry: refunded ' || p_refund_id, true);
    update bookings set status = 'refunded', paid_after_expiry = true,
        stripe_refund_id = p_refund_id, payment_processing = false, updated_at = now()
    where id = p_booking and status in ('expired', 'released', 'failed');
    return found;
end
$$;

revoke all on all functions in schema dentbook from public;
grant execute on function dentbook.current_tenant() to dentbook_anon, dentbook_staff, dentbook_service;
grant execute on function dentbook.longest_visit() to dentbook_staff;
grant execute on function dentbook.public_clinics(), dentbook.public_clinic(text),
    dentbook.public_doctors(), dentbook.public_visit_types(), dentbook.public_working_hours(uuid),
    dentbook.public_days_off(uuid, date, date), dentbook.public_busy(uuid, timestamptz, timestamptz),
    dentbook.public_booking(uuid)
    to dentbook_anon, dentbook_service, dentbook_staff;
grant execute on function dentbook.hold_slot(uuid, uuid, timestamptz, text, text, text, inet, text,
        interval, interval, interval, integer, integer),
    dentbook.attach_checkout_session(uuid, text), dentbook.release_hold(uuid, text),
    dentbook.record_webhook_event(text, text),
    dentbook.apply_payment_event(uuid, text, text, text, text, interval),
    dentbook.complete_refund(uuid, text)
    to dentbook_service;

-- Triggers ------------------------------------------------------------------------

-- Audit: every status change (and the start of a delayed payment) appends a row.
create or replace function dentbook.audit_booking() returns trigger
    language plpgsql security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
begin
    if tg_op = 'INSERT' or old.status is distinct from new.status
       or old.payment_processing is distinct from new.payment_processing then
        insert into booking_events (tenant_id, booking_id, from_status, to_status, detail)
        values (new.tenant_id, new.id, case when tg_op = 'UPDATE' then old.status end, new.status,
                coalesce(nullif(current_setting('app.audit_detail', true), ''), lower(tg_op))
                || case when new.payment_processing then ' (payment processing)' else '' end);
    end if;
    return null;
end
$$;

drop trigger if exists bookings_audit on dentbook.bookings;
create trigger bookings_audit after insert or update on dentbook.bookings
    for each row execute function dentbook.audit_booking();

create or replace function dentbook.refuse_change() returns trigger
    language plpgsql set search_path = pg_catalog
as $$
begin
    raise exception '% is append-only', tg_table_name using errcode = 'DBK09';
end
$$;

drop trigger if exists booking_events_append_only on dentbook.booking_events;
create trigger booking_events_append_only before update or delete or truncate
    on dentbook.booking_events for each statement execute function dentbook.refuse_change();

-- Realtime: announce every change that takes or frees time, on commit (NOTIFY is
-- transactional, so a rolled-back hold is never announced). Ids and instants only.
create or replace function dentbook.notify_booking() returns trigger
    language plpgsql security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
begin
    if tg_op = 'INSERT' or old.status is distinct from new.status
       or old.payment_processing is distinct from new.payment_processing
       or old.hold_expires_at is distinct from new.hold_expires_at then
        perform pg_notify('dentbook_bookings', json_build_object(
            't', new.tenant_id, 'd', new.doctor_id, 'b', new.id,
            's', lower(new.during), 'e', upper(new.during),
            'st', new.status, 'x', new.hold_expires_at)::text);
    end if;
    return null;
end
$$;

drop trigger if exists bookings_notify on dentbook.bookings;
create trigger bookings_notify after insert or update on dentbook.bookings
    for each row execute function dentbook.notify_booking();
