-- Service level, booking: the server acting for a patient (hold, give back, attach a
-- Checkout Session). Re-applied whenever this file changes (functions dropped and re-created).
--
-- SECURITY DEFINER with a fixed search_path; forced row level security still applies, so
-- each function sees only the clinic the calling transaction set in app.tenant_id.

drop function if exists dentbook.lock_calendar, dentbook.slot_is_offered, dentbook.hold_slot,
    dentbook.attach_checkout_session, dentbook.release_hold cascade;

-- Every write that puts a row version into the exclusion constraint's index (a hold,
-- writing its session id, confirming it) first takes this lock for the doctor. The
-- constraint alone guarantees no overlap; the lock only stops racing writers from
-- waiting on each other inside the constraint check, which PostgreSQL resolves by
-- aborting one of them as a deadlock after a second. Holds for one doctor queue; the
-- loser of a race finds the winner committed and fails at once with 23P01.
create function dentbook.lock_calendar(p_doctor uuid) returns void
    language sql volatile set search_path = pg_catalog
as $$ select pg_advisory_xact_lock(hashtextextended('dentbook-calendar:' || p_doctor::text, 0)) $$;

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

-- Hold a slot for a patient: one transaction, the exclusion constraint decides races.
-- p_holder is the SHA-256 of the browser's holder cookie: only that browser may get its
-- hold back by asking again. Raises SQLSTATE DBK01 (not an offered slot, or beyond the
-- booking window p_window), DBK02 (too many holds for this e-mail), DBK03 (too many holds
-- from this client), DBK04 (unknown doctor or visit type), 23P01 (slot taken).
create function dentbook.hold_slot(
    p_doctor uuid, p_visit_type uuid, p_start timestamptz,
    p_name text, p_email text, p_phone text, p_ip inet, p_locale text, p_holder bytea,
    p_hold interval, p_min_notice interval, p_window interval,
    p_max_per_email integer, p_max_per_ip integer)
    returns table (booking_id uuid, starts_at timestamptz, ends_at timestamptz,
                   hold_expires_at timestamptz, amount_minor integer, currency text,
                   reused boolean, stripe_session_id text, doctor_name text,
                   visit_name_pl text, visit_name_en text)
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_tenant uuid := dentbook.current_tenant();
    v_visit visit_types;
    v_doctor text;
    v_currency text;
    v_during tstzrange;
begin
    select * into v_visit from visit_types v where v.id = p_visit_type and v.active;
    select d.name into v_doctor from doctors d where d.id = p_doctor and d.active;
    if v_visit.id is null or v_doctor is null then
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
                      or (b.hold_expires_at > now()
                          and not coalesce(b.holder_hash = p_holder
                                           and b.email_key = dentbook.email_key(p_email),
                                           false)))) then
        raise exception 'slot taken' using errcode = 'exclusion_violation';
    end if;

    perform dentbook.lock_calendar(p_doctor);

    -- The same browser asking again, for the same patient, for the very slot it holds (a
    -- double click, the back button): give it its hold back instead of a "taken" against
    -- itself. Knowing the patient's e-mail is not enough: another browser is refused as for
    -- any taken slot.
    return query
    select b.id, lower(b.during), upper(b.during), b.hold_expires_at, b.amount_minor,
           b.currency, true, b.stripe_session_id, v_doctor, v_visit.name_pl, v_visit.name_en
    from bookings b
    where b.doctor_id = p_doctor and b.visit_type_id = p_visit_type and b.during = v_during
      and b.status = 'pending' and b.hold_expires_at > now() and not b.payment_processing
      and b.holder_hash = p_holder and b.email_key = dentbook.email_key(p_email);
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
                               holder_hash, amount_minor, currency, reference)
    values (v_tenant, p_doctor, p_visit_type, v_during, now() + p_hold,
            p_name, p_email, nullif(p_phone, ''), p_ip, p_locale,
            p_holder, v_visit.deposit_minor, v_currency, dentbook.new_reference())
    returning b.id, lower(b.during), upper(b.during), b.hold_expires_at, b.amount_minor, b.currency,
              false, null::text, v_doctor, v_visit.name_pl, v_visit.name_en
    into booking_id, starts_at, ends_at, hold_expires_at, amount_minor, currency, reused,
         stripe_session_id, doctor_name, visit_name_pl, visit_name_en;

    -- Limits, counted after our own insert under a lock per e-mail and per client, so
    -- concurrent holds from one patient are counted exactly (the lock is taken after
    -- the insert so that it never decides the race for a slot).
    perform pg_advisory_xact_lock(hashtextextended('hold-email:' || v_tenant || dentbook.email_key(p_email), 0));
    if (select count(*) from bookings b where b.status = 'pending' and b.hold_expires_at > now()
        and b.email_key = dentbook.email_key(p_email)) > p_max_per_email then
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
grant execute on function dentbook.hold_slot(uuid, uuid, timestamptz, text, text, text, inet, text,
        bytea, interval, interval, interval, integer, integer)
    to dentbook_service;

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
grant execute on function dentbook.attach_checkout_session(uuid, text) to dentbook_service;

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
grant execute on function dentbook.release_hold(uuid, text) to dentbook_service;

revoke execute on all functions in schema dentbook from public;
