-- Staff level, the front desk: what reception writes into the calendar (a visit taken by
-- phone, blocked time, moving, cancelling, attendance), and what every signed-in account
-- adds to the audit log by reading patients' data. Re-applied whenever this file changes.
--
-- Each writer is SECURITY DEFINER with a fixed search_path, granted to dentbook_staff, and
-- checks the role of the account the server set for the transaction (app.staff_id) before
-- anything else: a route that forgot its guard still cannot write. Forced row level
-- security still applies, so another clinic's doctor, visit type or visit does not exist
-- here (DBK04). Each is one guarded transition; the bookings triggers write its audit row
-- (who from app.actor/app.staff_id, what and why from app.audit_detail) and announce it
-- to open calendars and dashboards, in the same transaction.
--
-- SQLSTATEs: DBK40 forbidden; DBK04 no such doctor, visit type, visit or block; DBK01 not a
-- slot the clinic offers; 23P01 the time overlaps an active visit or block (DETAIL: its id,
-- so the answer can name it); DBK21 the visit is not in a state for this (cancelled,
-- started, ended, attended); DBK22 attendance for a visit more than 30 minutes away; DBK23
-- a move to where the visit already is; DBK24 an empty or past block; DBK25 a block longer
-- than the longest visit; DBK26 an unknown attendance state.

drop function if exists dentbook.desk_conflict, dentbook.desk_time_taken,
    dentbook.desk_expire_lapsed, dentbook.desk_book,
    dentbook.desk_block, dentbook.desk_unblock, dentbook.desk_move, dentbook.desk_cancel,
    dentbook.desk_attendance, dentbook.desk_revoke_link, dentbook.audit_read,
    dentbook.audit_accounts cascade;

-- The active visit or block of a doctor overlapping an interval (the earliest), other than
-- p_self: what a refused write collided with.
create function dentbook.desk_conflict(p_doctor uuid, p_during tstzrange, p_self uuid)
    returns uuid
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select b.id from bookings b
    where b.doctor_id = p_doctor and b.status in ('pending', 'confirmed')
      and b.starts_at >= lower(p_during) - dentbook.longest_visit()
      and b.starts_at < upper(p_during) and b.during && p_during
      and b.id is distinct from p_self
      and (b.status = 'confirmed' or b.hold_expires_at > now())
    order by b.starts_at limit 1
$$;

-- A write the exclusion constraint refused: 23P01 again, its DETAIL the id of what it
-- collided with (desk_conflict; empty when that is gone already), so the answer can name it.
create function dentbook.desk_time_taken(p_doctor uuid, p_during tstzrange, p_self uuid)
    returns void
    language plpgsql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
begin
    raise exception 'time taken' using errcode = 'exclusion_violation',
        detail = coalesce(dentbook.desk_conflict(p_doctor, p_during, p_self)::text, '');
end
$$;

-- Lapsed holds on an interval give way, in the caller's transaction (as in hold_slot).
create function dentbook.desk_expire_lapsed(p_doctor uuid, p_during tstzrange) returns void
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_detail text := current_setting('app.audit_detail', true);
begin
    perform set_config('app.audit_detail', 'hold lapsed', true);
    update bookings b set status = 'expired', updated_at = now()
    where b.doctor_id = p_doctor and b.status = 'pending' and b.hold_expires_at <= now()
      and b.starts_at >= lower(p_during) - dentbook.longest_visit()
      and b.starts_at < upper(p_during) and b.during && p_during;
    perform set_config('app.audit_detail', coalesce(v_detail, ''), true);
end
$$;

-- A visit taken by phone: confirmed at once, no deposit, on a slot the clinic offers (not
-- yet started, within p_window). With an e-mail the patient gets the confirmation and the
-- reminders, as after an online booking.
create function dentbook.desk_book(p_doctor uuid, p_visit_type uuid, p_start timestamptz,
                                   p_name text, p_phone text, p_email text, p_note text,
                                   p_locale text, p_window interval)
    returns table (booking_id uuid, reference text, starts_at timestamptz, ends_at timestamptz)
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_staff uuid := dentbook.require_role('reception');
    v_tenant uuid := dentbook.current_tenant();
    v_minutes integer;
    v_during tstzrange;
    v_id uuid;
    v_reference text;
begin
    select v.duration_minutes into v_minutes from visit_types v
    where v.id = p_visit_type and v.active;
    if v_minutes is null or not exists (select from doctors d where d.id = p_doctor and d.active) then
        raise exception 'unknown doctor or visit type' using errcode = 'DBK04';
    end if;
    v_during := tstzrange(p_start, p_start + make_interval(mins => v_minutes), '[)');
    if p_start > now() + p_window
       or not dentbook.slot_is_offered(p_doctor, v_during, interval '0') then
        raise exception 'not an offered slot' using errcode = 'DBK01';
    end if;
    perform dentbook.lock_calendar(p_doctor);
    perform dentbook.desk_expire_lapsed(p_doctor, v_during);
    perform set_config('app.audit_detail', 'booked by phone', true);
    begin
        insert into bookings as b (tenant_id, doctor_id, visit_type_id, during, status,
                                   hold_expires_at, patient_name, patient_email, patient_phone,
                                   locale, amount_minor, currency, reference, kind, source,
                                   note, created_by)
        select v_tenant, p_doctor, p_visit_type, v_during, 'confirmed', now(), p_name,
               nullif(p_email, ''), p_phone, p_locale, 0, t.currency, dentbook.new_reference(),
               'visit', 'phone', nullif(p_note, ''), v_staff
        from tenants t where t.id = v_tenant
        returning b.id, b.reference into v_id, v_reference;
    exception when exclusion_violation then
        perform dentbook.desk_time_taken(p_doctor, v_during, null);
    end;
    if nullif(p_email, '') is not null then
        perform dentbook.enqueue_message(v_id, 'confirmation');
        perform dentbook.schedule_reminders(v_id);
    end if;
    return query select v_id, v_reference, lower(v_during), upper(v_during);
end
$$;
grant execute on function dentbook.desk_book(uuid, uuid, timestamptz, text, text, text, text, text,
                                             interval) to dentbook_staff;

-- Block a doctor's time (a meeting, a break, an errand): a row under the same exclusion
-- constraint as visits, so nothing is booked over it and it cannot cover an active visit.
create function dentbook.desk_block(p_doctor uuid, p_start timestamptz, p_end timestamptz,
                                    p_reason text)
    returns uuid
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_staff uuid := dentbook.require_role('reception');
    v_tenant uuid := dentbook.current_tenant();
    v_during tstzrange;
    v_id uuid;
begin
    if not exists (select from doctors d where d.id = p_doctor) then
        raise exception 'unknown doctor' using errcode = 'DBK04';
    end if;
    if p_end <= p_start or p_end <= now() then
        raise exception 'an empty or past block' using errcode = 'DBK24';
    end if;
    if p_end - p_start > dentbook.longest_visit() then
        raise exception 'a block longer than the longest visit' using errcode = 'DBK25';
    end if;
    v_during := tstzrange(p_start, p_end, '[)');
    perform dentbook.lock_calendar(p_doctor);
    perform dentbook.desk_expire_lapsed(p_doctor, v_during);
    perform set_config('app.audit_detail', 'time blocked', true);
    begin
        insert into bookings as b (tenant_id, doctor_id, visit_type_id, during, status,
                                   hold_expires_at, locale, amount_minor, currency, kind, source,
                                   block_reason, created_by)
        select v_tenant, p_doctor, null, v_during, 'confirmed', now(), t.default_locale, 0,
               t.currency, 'block', 'staff', p_reason, v_staff
        from tenants t where t.id = v_tenant
        returning b.id into v_id;
    exception when exclusion_violation then
        perform dentbook.desk_time_taken(p_doctor, v_during, null);
    end;
    return v_id;
end
$$;
grant execute on function dentbook.desk_block(uuid, timestamptz, timestamptz, text) to dentbook_staff;

-- Give blocked time back. Only a block (a visit's id is not one: DBK04), only once (DBK21).
create function dentbook.desk_unblock(p_block uuid) returns void
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_staff uuid := dentbook.require_role('reception');
    v_doctor uuid;
begin
    select b.doctor_id into v_doctor from bookings b where b.id = p_block and b.kind = 'block';
    if v_doctor is null then
        raise exception 'no such block' using errcode = 'DBK04';
    end if;
    perform dentbook.lock_calendar(v_doctor);
    perform set_config('app.audit_detail', 'block removed', true);
    update bookings set status = 'cancelled', cancelled_by = 'clinic', updated_at = now()
    where id = p_block and kind = 'block' and status = 'confirmed';
    if not found then
        raise exception 'this block was removed already' using errcode = 'DBK21';
    end if;
end
$$;
grant execute on function dentbook.desk_unblock(uuid) to dentbook_staff;

-- Move a confirmed visit that has not started to another offered slot (of the same or
-- another doctor), keeping its length: one guarded UPDATE, so the exclusion constraint
-- decides; the visit moves or stays, never both times, never neither. Reminders follow it,
-- the patient's link lives as long after the new time as it did after the old one, and the
-- patient is told (with the calendar's SEQUENCE raised).
create function dentbook.desk_move(p_booking uuid, p_start timestamptz, p_doctor uuid,
                                   p_window interval)
    returns table (starts_at timestamptz, ends_at timestamptz, doctor_id uuid)
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_staff uuid := dentbook.require_role('reception');
    b bookings;
    v_doctor uuid;
    v_lock uuid;
    v_during tstzrange;
begin
    select x.* into b from bookings x where x.id = p_booking and x.kind = 'visit';
    if b.id is null then
        raise exception 'no such visit' using errcode = 'DBK04';
    end if;
    v_doctor := coalesce(p_doctor, b.doctor_id);
    if not exists (select from doctors d where d.id = v_doctor and d.active) then
        raise exception 'unknown doctor' using errcode = 'DBK04';
    end if;
    if b.status <> 'confirmed' or lower(b.during) <= now() or b.attendance is not null then
        raise exception 'this visit can no longer be moved' using errcode = 'DBK21';
    end if;
    v_during := tstzrange(p_start, p_start + (upper(b.during) - lower(b.during)), '[)');
    if v_during = b.during and v_doctor = b.doctor_id then
        raise exception 'the visit is there already' using errcode = 'DBK23';
    end if;
    if p_start > now() + p_window
       or not dentbook.slot_is_offered(v_doctor, v_during, interval '0') then
        raise exception 'not an offered slot' using errcode = 'DBK01';
    end if;
    -- Both calendars, always in the same order, so two moves in opposite directions queue
    -- instead of deadlocking.
    for v_lock in select distinct d from unnest(array[b.doctor_id, v_doctor]) d order by d loop
        perform dentbook.lock_calendar(v_lock);
    end loop;
    perform dentbook.desk_expire_lapsed(v_doctor, v_during);
    perform set_config('app.audit_detail', 'moved by the clinic', true);
    begin
        update bookings x set during = v_during, doctor_id = v_doctor, sequence = x.sequence + 1,
            updated_at = now()
        where x.id = b.id and x.status = 'confirmed' and x.during = b.during
          and x.doctor_id = b.doctor_id and x.attendance is null;
    exception when exclusion_violation then
        perform dentbook.desk_time_taken(v_doctor, v_during, b.id);
    end;
    if not found then
        raise exception 'this visit changed meanwhile' using errcode = 'DBK21';
    end if;
    perform dentbook.cancel_reminders(b.id);
    perform dentbook.schedule_reminders(b.id);
    update visit_links set expires_at = expires_at + (upper(v_during) - upper(b.during))
    where booking_id = b.id and revoked_at is null;
    perform dentbook.enqueue_message(b.id, 'reschedule');
    return query select lower(v_during), upper(v_during), v_doctor;
end
$$;
grant execute on function dentbook.desk_move(uuid, timestamptz, uuid, interval) to dentbook_staff;

-- The clinic cancels a confirmed visit that has not ended and whose patient has not come,
-- with its reason (kept on the visit, not in the audit log: free text may name people, and
-- the log outlives patients' erasure). The time is free at once; reminders stop; a paid
-- deposit is owed back in full (made after commit, once: the refunds key); the patient is
-- told. Returns the refund owed.
create function dentbook.desk_cancel(p_booking uuid, p_reason text) returns integer
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_staff uuid := dentbook.require_role('reception');
    v_doctor uuid;
    v_refund integer;
begin
    select b.doctor_id into v_doctor from bookings b where b.id = p_booking and b.kind = 'visit';
    if v_doctor is null then
        raise exception 'no such visit' using errcode = 'DBK04';
    end if;
    perform dentbook.lock_calendar(v_doctor);
    v_refund := dentbook.policy_refund(p_booking, 'clinic');
    perform set_config('app.audit_detail', 'cancelled by the clinic', true);
    update bookings set status = 'cancelled', cancelled_by = 'clinic', cancel_reason = p_reason,
        sequence = sequence + 1, updated_at = now()
    where id = p_booking and status = 'confirmed' and upper(during) > now()
      and attendance is null;
    if not found then
        raise exception 'this visit cannot be cancelled now' using errcode = 'DBK21';
    end if;
    perform dentbook.visit_cancelled(p_booking, v_refund);
    return v_refund;
end
$$;
grant execute on function dentbook.desk_cancel(uuid, text) to dentbook_staff;

-- Arrived, no-show or completed: for a confirmed visit that has started or starts within
-- 30 minutes (DBK22 otherwise). Setting the state it already has changes nothing.
create function dentbook.desk_attendance(p_booking uuid, p_state text) returns boolean
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_staff uuid := dentbook.require_role('reception');
    b bookings;
begin
    select x.* into b from bookings x where x.id = p_booking and x.kind = 'visit';
    if b.id is null then
        raise exception 'no such visit' using errcode = 'DBK04';
    end if;
    if p_state is null or p_state not in ('arrived', 'no_show', 'completed') then
        raise exception 'unknown attendance state' using errcode = 'DBK26';
    end if;
    if b.status <> 'confirmed' then
        raise exception 'not a confirmed visit' using errcode = 'DBK21';
    end if;
    if lower(b.during) > now() + interval '30 minutes' then
        raise exception 'the visit is more than 30 minutes away' using errcode = 'DBK22';
    end if;
    -- The new row version enters the exclusion constraint's index: queue like every writer.
    perform dentbook.lock_calendar(b.doctor_id);
    perform set_config('app.audit_detail', 'marked ' || replace(p_state, '_', '-'), true);
    update bookings set attendance = p_state, updated_at = now()
    where id = p_booking and status = 'confirmed' and attendance is distinct from p_state;
    return found;
end
$$;
grant execute on function dentbook.desk_attendance(uuid, text) to dentbook_staff;

-- The patient's link to a visit revoked (a forwarded or leaked e-mail): from now on it
-- answers like an unknown link, and the next e-mail about the visit (or its payment return
-- page) carries a new one. Returns how many links it revoked.
create function dentbook.desk_revoke_link(p_booking uuid) returns integer
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_staff uuid := dentbook.require_role('reception');
    v_count integer;
begin
    if not exists (select from bookings x where x.id = p_booking and x.kind = 'visit') then
        raise exception 'no such visit' using errcode = 'DBK04';
    end if;
    update visit_links set revoked_at = now() where booking_id = p_booking and revoked_at is null;
    get diagnostics v_count = row_count;
    perform dentbook.audit_staff(v_staff, 'link.revoked', null, p_booking => p_booking);
    return v_count;
end
$$;
grant execute on function dentbook.desk_revoke_link(uuid) to dentbook_staff;

-- A staff read of patients' data (an agenda page with names, a visit's page): who and
-- which page with which filters; ids and dates only, never what was shown. A visit's page
-- names its visit, so the patient's own export lists who read it.
create function dentbook.audit_read(p_what text, p_booking uuid default null) returns void
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_staff uuid := dentbook.require_role('viewer');
begin
    perform dentbook.audit_staff(v_staff, 'read', left(p_what, 500),
                                 -- the visit if it is this clinic's, or none
                                 p_booking => (select b.id from bookings b where b.id = p_booking));
end
$$;
grant execute on function dentbook.audit_read(text, uuid) to dentbook_staff;

-- The clinic's staff accounts by e-mail, for naming who did what on the audit page (the
-- staff level cannot read the accounts table: it holds password and second-factor hashes).
create function dentbook.audit_accounts()
    returns table (id uuid, email text)
    language plpgsql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
begin
    perform dentbook.require_role('viewer');
    return query select a.id, a.email from staff_accounts a order by a.email;
end
$$;
grant execute on function dentbook.audit_accounts() to dentbook_staff;

revoke execute on all functions in schema dentbook from public;
