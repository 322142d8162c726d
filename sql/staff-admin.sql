-- Staff level, the clinic's admin: staff accounts and roles, doctors (hours, days off,
-- calendar feeds), visit types, the cancellation policy and the clinic's details; and the
-- two service-level doors these open to people who are not signed in (an invitation's
-- set-password link, a doctor's calendar feed). Re-applied whenever this file changes
-- (functions are dropped and re-created).
--
-- Every writer checks the role itself (dentbook.require_role, SQLSTATE DBK40), so a route
-- that forgot its guard still cannot write, and records the change in the audit log in the
-- same transaction. SECURITY DEFINER with a fixed search_path; forced row level security
-- still applies, so an id of another clinic simply does not exist here (SQLSTATE DBK04).
-- Other refusals: DBK41 (the clinic would be left without an admin who can sign in),
-- DBK42 (working hours that overlap), DBK43 (that e-mail already has an account).

drop function if exists dentbook.audit_setting, dentbook.admin_staff, dentbook.admin_invite,
    dentbook.admin_reinvite, dentbook.admin_set_role, dentbook.admin_set_active,
    dentbook.invite_lookup, dentbook.invite_accept, dentbook.admin_add_doctor,
    dentbook.admin_update_doctor, dentbook.admin_set_hours, dentbook.admin_add_days_off,
    dentbook.admin_remove_day_off, dentbook.admin_set_feed, dentbook.visits_outside_hours,
    dentbook.admin_add_visit_type, dentbook.admin_update_visit_type, dentbook.admin_set_policy, dentbook.admin_set_retention,
    dentbook.admin_set_clinic, dentbook.feed_doctor, dentbook.feed_events, dentbook.lock_admins,
    dentbook.other_admin, dentbook.lock_account, dentbook.last_admin, dentbook.hours_json
    cascade;

-- A settings change in the audit log: what (p_action), before and after (ids and values,
-- never a patient's data), by the transaction's signed-in account unless p_staff is given.
create function dentbook.audit_setting(p_action text, p_before jsonb, p_after jsonb,
                                       p_staff uuid default null)
    returns void
    language sql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    insert into audit_log (tenant_id, actor, staff_id, action, detail, before, after)
    values (dentbook.current_tenant(), 'staff',
            coalesce(p_staff, nullif(current_setting('app.staff_id', true), '')::uuid),
            p_action, p_action, p_before, p_after)
$$;

-- Staff accounts ---------------------------------------------------------------------

create function dentbook.admin_staff()
    returns table (id uuid, email text, role text, active boolean, has_password boolean,
                   invite_expires_at timestamptz, second_factor boolean)
    language plpgsql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
begin
    perform dentbook.require_role('admin');
    return query
    select a.id, a.email, a.role, a.active, a.password_hash is not null, a.invite_expires_at,
           a.totp_enabled_at is not null
    from staff_accounts a order by a.email, a.id;
end
$$;
grant execute on function dentbook.admin_staff() to dentbook_staff;

-- Invite someone: an account with no password yet and a one-time set-password link (only
-- the SHA-256 of its token is stored) until p_expires. Inviting an address that was
-- invited but never set a password issues a new link (the old one stops working).
create function dentbook.admin_invite(p_email text, p_role text, p_invite_hash bytea,
                                      p_expires timestamptz)
    returns uuid
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_id uuid;
    v_has_password boolean;
begin
    perform dentbook.require_role('admin');
    select a.id, a.password_hash is not null into v_id, v_has_password
    from staff_accounts a where a.email = lower(p_email);
    if v_has_password then
        raise exception 'that e-mail already has an account' using errcode = 'DBK43';
    end if;
    if v_id is null then
        insert into staff_accounts (tenant_id, email, role, invite_hash, invite_expires_at)
        values (dentbook.current_tenant(), lower(p_email), p_role, p_invite_hash, p_expires)
        returning id into v_id;
    else
        update staff_accounts set role = p_role, active = true, invite_hash = p_invite_hash,
            invite_expires_at = p_expires
        where id = v_id;
    end if;
    perform dentbook.audit_setting('staff.invited', null,
                                   jsonb_build_object('staff', v_id, 'role', p_role));
    return v_id;
end
$$;
grant execute on function dentbook.admin_invite(text, text, bytea, timestamptz) to dentbook_staff;

-- A new set-password link for an invited account that has not set its password yet.
create function dentbook.admin_reinvite(p_staff uuid, p_invite_hash bytea, p_expires timestamptz)
    returns text
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_email text;
    v_has_password boolean;
begin
    perform dentbook.require_role('admin');
    select a.email, a.password_hash is not null into v_email, v_has_password
    from staff_accounts a where a.id = p_staff;
    if v_email is null then
        raise exception 'no such account' using errcode = 'DBK04';
    elsif v_has_password then
        raise exception 'that account already has a password' using errcode = 'DBK43';
    end if;
    update staff_accounts set invite_hash = p_invite_hash, invite_expires_at = p_expires
    where id = p_staff;
    perform dentbook.audit_setting('staff.invited', null, jsonb_build_object('staff', p_staff));
    return v_email;
end
$$;
grant execute on function dentbook.admin_reinvite(uuid, bytea, timestamptz) to dentbook_staff;

-- Changes that could leave the clinic with no admin who can sign in (demoting or
-- deactivating one) are serialised per clinic by this lock, taken BEFORE the caller's own
-- role is checked: two admins demoting each other at once run one after the other, and
-- the second (at READ COMMITTED, each statement reading what was committed) finds itself
-- no longer an admin, or the other one the last.
create function dentbook.lock_admins() returns void
    language sql volatile set search_path = dentbook, pg_catalog
as $$
    select pg_advisory_xact_lock(hashtextextended('dentbook-admins:'
                                                  || dentbook.current_tenant()::text, 0))
$$;

-- The account p_staff, its row locked, for a change that could leave the clinic with no
-- admin who can sign in: lock_admins first, then the caller's role, then the row (DBK04
-- when there is no such account).
create function dentbook.lock_account(p_staff uuid) returns dentbook.staff_accounts
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    a staff_accounts;
begin
    perform dentbook.lock_admins();
    perform dentbook.require_role('admin');
    select * into a from staff_accounts x where x.id = p_staff for update;
    if a.id is null then
        raise exception 'no such account' using errcode = 'DBK04';
    end if;
    return a;
end
$$;

-- Whether this account is the clinic's last admin who can sign in: an active admin with a
-- password, and no other account is one.
create function dentbook.last_admin(p_account dentbook.staff_accounts) returns boolean
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select p_account.role = 'admin' and p_account.active and p_account.password_hash is not null
       and not exists (select from staff_accounts x where x.id <> p_account.id
                       and x.role = 'admin' and x.active and x.password_hash is not null)
$$;

create function dentbook.admin_set_role(p_staff uuid, p_role text)
    returns void
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    a staff_accounts := dentbook.lock_account(p_staff);
begin
    if a.role = p_role then
        return;
    end if;
    if dentbook.last_admin(a) then
        raise exception 'the last admin stays an admin' using errcode = 'DBK41';
    end if;
    update staff_accounts set role = p_role where id = p_staff;
    perform dentbook.audit_setting('staff.role', jsonb_build_object('staff', p_staff, 'role', a.role),
                                   jsonb_build_object('staff', p_staff, 'role', p_role));
end
$$;
grant execute on function dentbook.admin_set_role(uuid, text) to dentbook_staff;

-- Deactivate (or reactivate) an account. A deactivated account cannot sign in, and its
-- sessions end at once, live streams included, in every server process (as at sign-out).
create function dentbook.admin_set_active(p_staff uuid, p_active boolean)
    returns void
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    a staff_accounts := dentbook.lock_account(p_staff);
begin
    if a.active = p_active then
        return;
    end if;
    if not p_active and dentbook.last_admin(a) then
        raise exception 'the last admin stays active' using errcode = 'DBK41';
    end if;
    update staff_accounts set active = p_active where id = p_staff;
    if not p_active then
        perform dentbook.end_sessions(p_staff);
    end if;
    perform dentbook.audit_setting('staff.active',
                                   jsonb_build_object('staff', p_staff, 'active', a.active),
                                   jsonb_build_object('staff', p_staff, 'active', p_active));
end
$$;
grant execute on function dentbook.admin_set_active(uuid, boolean) to dentbook_staff;

-- Service level: the invitation link. Who it is for, and whether it has expired; nothing
-- for an unknown, used or withdrawn link (or a deactivated account).
create function dentbook.invite_lookup(p_invite_hash bytea)
    returns table (email text, expired boolean)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select a.email, a.invite_expires_at <= now() from staff_accounts a
    where a.invite_hash = p_invite_hash and a.active
$$;
grant execute on function dentbook.invite_lookup(bytea) to dentbook_service;

-- The invitee sets a password, once: a guarded UPDATE, so of two racing submissions one
-- wins and the link is spent. Returns the account, or nothing (unknown, used, expired).
create function dentbook.invite_accept(p_invite_hash bytea, p_password_hash text)
    returns uuid
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_id uuid;
begin
    update staff_accounts set password_hash = p_password_hash, invite_hash = null,
        invite_expires_at = null
    where invite_hash = p_invite_hash and invite_expires_at > now() and active
    returning id into v_id;
    if v_id is not null then
        perform dentbook.audit_setting('staff.password_set', null,
                                       jsonb_build_object('staff', v_id), v_id);
    end if;
    return v_id;
end
$$;
grant execute on function dentbook.invite_accept(bytea, text) to dentbook_service;

-- Doctors -----------------------------------------------------------------------------

create function dentbook.admin_add_doctor(p_name text)
    returns uuid
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_id uuid;
begin
    perform dentbook.require_role('admin');
    insert into doctors (tenant_id, name) values (dentbook.current_tenant(), p_name)
    returning id into v_id;
    perform dentbook.audit_setting('doctor.added', null,
                                   jsonb_build_object('doctor', v_id, 'name', p_name));
    return v_id;
end
$$;
grant execute on function dentbook.admin_add_doctor(text) to dentbook_staff;

-- Rename a doctor, or take them off (and back on) the public calendar. Their visits stay.
create function dentbook.admin_update_doctor(p_doctor uuid, p_name text, p_active boolean)
    returns void
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    d doctors;
begin
    perform dentbook.require_role('admin');
    select * into d from doctors x where x.id = p_doctor for update;
    if d.id is null then
        raise exception 'no such doctor' using errcode = 'DBK04';
    end if;
    update doctors set name = p_name, active = p_active where id = p_doctor;
    perform dentbook.audit_setting('doctor.changed',
        jsonb_build_object('doctor', p_doctor, 'name', d.name, 'active', d.active),
        jsonb_build_object('doctor', p_doctor, 'name', p_name, 'active', p_active));
end
$$;
grant execute on function dentbook.admin_update_doctor(uuid, text, boolean) to dentbook_staff;

create function dentbook.hours_json(p_doctor uuid) returns jsonb
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select coalesce(jsonb_agg(jsonb_build_array(w.weekday, w.start_time, w.end_time)
                              order by w.weekday, w.start_time), '[]')
    from working_hours w where w.doctor_id = p_doctor
$$;

-- A doctor's whole week at once (ISO weekday, start, end; several ranges a day): each range
-- must have start < end (the table's check) and no two of one day may overlap (DBK42).
-- Visits already booked stay where they are; visits_outside_hours lists any the new hours
-- no longer cover. The doctor's calendar lock keeps a hold from being checked against
-- hours half replaced.
create function dentbook.admin_set_hours(p_doctor uuid, p_weekdays integer[], p_starts time[],
                                         p_ends time[])
    returns void
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_before jsonb;
begin
    perform dentbook.require_role('admin');
    if not exists (select from doctors d where d.id = p_doctor) then
        raise exception 'no such doctor' using errcode = 'DBK04';
    end if;
    if cardinality(p_weekdays) is distinct from cardinality(p_starts)
       or cardinality(p_weekdays) is distinct from cardinality(p_ends) then
        raise exception 'weekdays, starts and ends differ in number' using errcode = '22023';
    end if;
    if exists (select from unnest(p_weekdays, p_starts, p_ends) with ordinality a(day, s, e, n)
               join unnest(p_weekdays, p_starts, p_ends) with ordinality b(day, s, e, n)
                    on a.n < b.n and a.day = b.day and a.s < b.e and b.s < a.e) then
        raise exception 'working hours overlap' using errcode = 'DBK42';
    end if;
    perform dentbook.lock_calendar(p_doctor);
    v_before := dentbook.hours_json(p_doctor);
    delete from working_hours w where w.doctor_id = p_doctor;
    insert into working_hours (tenant_id, doctor_id, weekday, start_time, end_time)
    select dentbook.current_tenant(), p_doctor, h.day, h.s, h.e
    from unnest(p_weekdays, p_starts, p_ends) h(day, s, e);
    perform dentbook.audit_setting('doctor.hours',
        jsonb_build_object('doctor', p_doctor, 'hours', v_before),
        jsonb_build_object('doctor', p_doctor, 'hours', dentbook.hours_json(p_doctor)));
end
$$;
grant execute on function dentbook.admin_set_hours(uuid, integer[], time[], time[]) to dentbook_staff;

-- Days off from p_from to p_to (one day, or a holiday of several). Returns how many were new.
create function dentbook.admin_add_days_off(p_doctor uuid, p_from date, p_to date)
    returns integer
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_count integer;
begin
    perform dentbook.require_role('admin');
    if not exists (select from doctors d where d.id = p_doctor) then
        raise exception 'no such doctor' using errcode = 'DBK04';
    end if;
    if p_to < p_from or p_to > p_from + 366 then
        raise exception 'days off run from a day to at most a year later' using errcode = '22023';
    end if;
    perform dentbook.lock_calendar(p_doctor);
    insert into days_off (tenant_id, doctor_id, day)
    select dentbook.current_tenant(), p_doctor, g::date
    from generate_series(p_from, p_to, interval '1 day') g
    on conflict do nothing;
    get diagnostics v_count = row_count;
    perform dentbook.audit_setting('doctor.days_off', null,
        jsonb_build_object('doctor', p_doctor, 'from', p_from, 'to', p_to));
    return v_count;
end
$$;
grant execute on function dentbook.admin_add_days_off(uuid, date, date) to dentbook_staff;

create function dentbook.admin_remove_day_off(p_doctor uuid, p_day date)
    returns boolean
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
begin
    perform dentbook.require_role('admin');
    if not exists (select from doctors d where d.id = p_doctor) then
        raise exception 'no such doctor' using errcode = 'DBK04';
    end if;
    delete from days_off o where o.doctor_id = p_doctor and o.day = p_day;
    if not found then
        return false;
    end if;
    perform dentbook.audit_setting('doctor.day_on', jsonb_build_object('doctor', p_doctor, 'day', p_day),
                                   null);
    return true;
end
$$;
grant execute on function dentbook.admin_remove_day_off(uuid, date) to dentbook_staff;

-- A doctor's calendar feed: a new token (only its SHA-256 is kept; the old one stops
-- working at once) or, with null, no feed.
create function dentbook.admin_set_feed(p_doctor uuid, p_feed_hash bytea)
    returns void
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
begin
    perform dentbook.require_role('admin');
    update doctors set feed_hash = p_feed_hash where id = p_doctor;
    if not found then
        raise exception 'no such doctor' using errcode = 'DBK04';
    end if;
    perform dentbook.audit_setting('doctor.feed', null, jsonb_build_object(
        'doctor', p_doctor, 'feed', case when p_feed_hash is null then 'off' else 'new' end));
end
$$;
grant execute on function dentbook.admin_set_feed(uuid, bytea) to dentbook_staff;

-- Future active visits that the doctor's hours no longer cover (the whole visit inside one
-- range of its local day, in the clinic's zone), that fall on a day off, or whose doctor is
-- inactive: for one doctor, or all with null. At most p_limit rows, each with the total.
create function dentbook.visits_outside_hours(p_doctor uuid, p_limit integer)
    returns table (id uuid, doctor_id uuid, doctor_name text, starts_at timestamptz,
                   ends_at timestamptz, status text, patient_name text, reason text,
                   total bigint)
    language plpgsql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
#variable_conflict use_column
begin
    perform dentbook.require_role('reception');
    return query
    with clinic as (select t.time_zone as tz from tenants t where t.id = dentbook.current_tenant()),
    future as (
        select b.*, (b.starts_at at time zone c.tz)::date as local_day, c.tz
        from bookings b, clinic c
        where b.kind = 'visit' and b.starts_at > now()
          and (p_doctor is null or b.doctor_id = p_doctor)
          and (b.status = 'confirmed' or (b.status = 'pending' and b.hold_expires_at > now()))),
    judged as (
        select f.*, d.name as doctor_name, case
            when not d.active then 'inactive'
            when exists (select from days_off o where o.doctor_id = f.doctor_id
                         and o.day = f.local_day) then 'day_off'
            when not exists (
                select from working_hours w
                where w.doctor_id = f.doctor_id and w.weekday = extract(isodow from f.local_day)
                  and f.starts_at >= (f.local_day + w.start_time) at time zone f.tz
                  and upper(f.during) <= (f.local_day + w.end_time) at time zone f.tz) then 'hours'
        end as reason
        from future f join doctors d on d.tenant_id = f.tenant_id and d.id = f.doctor_id)
    select j.id, j.doctor_id, j.doctor_name, j.starts_at, upper(j.during), j.status,
           j.patient_name, j.reason, count(*) over ()
    from judged j where j.reason is not null
    order by j.starts_at, j.doctor_name, j.id
    limit p_limit;
end
$$;
grant execute on function dentbook.visits_outside_hours(uuid, integer) to dentbook_staff;

-- Visit types -------------------------------------------------------------------------

create function dentbook.admin_add_visit_type(p_name_pl text, p_name_en text, p_minutes integer,
                                              p_deposit_minor integer)
    returns uuid
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_id uuid;
begin
    perform dentbook.require_role('admin');
    insert into visit_types (tenant_id, name_pl, name_en, duration_minutes, deposit_minor)
    values (dentbook.current_tenant(), p_name_pl, p_name_en, p_minutes, p_deposit_minor)
    returning id into v_id;
    perform dentbook.audit_setting('visit_type.added', null, jsonb_build_object(
        'visit_type', v_id, 'name_pl', p_name_pl, 'name_en', p_name_en, 'minutes', p_minutes,
        'deposit_minor', p_deposit_minor));
    return v_id;
end
$$;
grant execute on function dentbook.admin_add_visit_type(text, text, integer, integer) to dentbook_staff;

-- A visit type changes for bookings made from now on. Visits already booked keep their
-- own times (bookings.during) and amounts (bookings.amount_minor): nothing here touches them.
create function dentbook.admin_update_visit_type(p_visit_type uuid, p_name_pl text,
                                                 p_name_en text, p_minutes integer,
                                                 p_deposit_minor integer, p_active boolean)
    returns void
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v visit_types;
begin
    perform dentbook.require_role('admin');
    select * into v from visit_types x where x.id = p_visit_type for update;
    if v.id is null then
        raise exception 'no such visit type' using errcode = 'DBK04';
    end if;
    update visit_types set name_pl = p_name_pl, name_en = p_name_en, duration_minutes = p_minutes,
        deposit_minor = p_deposit_minor, active = p_active
    where id = p_visit_type;
    perform dentbook.audit_setting('visit_type.changed',
        jsonb_build_object('visit_type', v.id, 'name_pl', v.name_pl, 'name_en', v.name_en,
                           'minutes', v.duration_minutes, 'deposit_minor', v.deposit_minor,
                           'active', v.active),
        jsonb_build_object('visit_type', v.id, 'name_pl', p_name_pl, 'name_en', p_name_en,
                           'minutes', p_minutes, 'deposit_minor', p_deposit_minor,
                           'active', p_active));
end
$$;
grant execute on function dentbook.admin_update_visit_type(uuid, text, text, integer, integer, boolean)
    to dentbook_staff;

-- The clinic -------------------------------------------------------------------------

-- The cancellation policy and the reminders, for visits booked from now on (reminders
-- already scheduled keep their times). The tenants trigger tells every process.
create function dentbook.admin_set_policy(p_window_hours integer, p_late_refund_percent integer,
                                          p_reminder_hours integer[])
    returns void
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    t tenants;
begin
    perform dentbook.require_role('admin');
    select * into t from tenants x where x.id = dentbook.current_tenant() for update;
    update tenants set cancel_window_hours = p_window_hours,
        late_refund_percent = p_late_refund_percent, reminder_hours = p_reminder_hours
    where id = t.id;
    perform dentbook.audit_setting('clinic.policy',
        jsonb_build_object('window_hours', t.cancel_window_hours,
                           'late_refund_percent', t.late_refund_percent,
                           'reminder_hours', t.reminder_hours),
        jsonb_build_object('window_hours', p_window_hours,
                           'late_refund_percent', p_late_refund_percent,
                           'reminder_hours', p_reminder_hours));
end
$$;
grant execute on function dentbook.admin_set_policy(integer, integer, integer[]) to dentbook_staff;

-- How long the clinic keeps patients' data (the retention job reads it at its next run):
-- years after a visit before it is anonymised, days after an unpaid hold lapsed before its
-- personal data is erased. The table checks the ranges (1-30 years, 1-90 days).
create function dentbook.admin_set_retention(p_years integer, p_unpaid_days integer)
    returns void
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    t tenants;
begin
    perform dentbook.require_role('admin');
    select * into t from tenants x where x.id = dentbook.current_tenant() for update;
    update tenants set retention_years = p_years, unpaid_erasure_days = p_unpaid_days
    where id = t.id;
    perform dentbook.audit_setting('clinic.retention',
        jsonb_build_object('retention_years', t.retention_years,
                           'unpaid_erasure_days', t.unpaid_erasure_days),
        jsonb_build_object('retention_years', p_years, 'unpaid_erasure_days', p_unpaid_days));
end
$$;
grant execute on function dentbook.admin_set_retention(integer, integer) to dentbook_staff;

-- The clinic's details. The time zone is checked by the table (an unknown zone fails);
-- working hours are wall-clock times, so they follow a new zone, and visits (instants)
-- stay: visits_outside_hours then lists any that no longer fit.
create function dentbook.admin_set_clinic(p_name text, p_address text, p_phone text, p_email text,
                                          p_time_zone text, p_default_locale text)
    returns void
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    t tenants;
begin
    perform dentbook.require_role('admin');
    select * into t from tenants x where x.id = dentbook.current_tenant() for update;
    update tenants set name = p_name, address = p_address, phone = p_phone, email = p_email,
        time_zone = p_time_zone, default_locale = p_default_locale
    where id = t.id;
    perform dentbook.audit_setting('clinic.details',
        jsonb_build_object('name', t.name, 'address', t.address, 'phone', t.phone,
                           'email', t.email, 'time_zone', t.time_zone,
                           'default_locale', t.default_locale),
        jsonb_build_object('name', p_name, 'address', p_address, 'phone', p_phone,
                           'email', p_email, 'time_zone', p_time_zone,
                           'default_locale', p_default_locale));
end
$$;
grant execute on function dentbook.admin_set_clinic(text, text, text, text, text, text) to dentbook_staff;

-- Doctors' calendar feeds (service level: whoever holds the token) ------------------------

create function dentbook.feed_doctor(p_feed_hash bytea)
    returns table (id uuid, name text)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$ select d.id, d.name from doctors d where d.feed_hash = p_feed_hash $$;
grant execute on function dentbook.feed_doctor(bytea) to dentbook_service;

-- The feed's entries: confirmed visits and blocks of that doctor starting in [p_from, p_to).
-- A visit's patient name is given for its initials (the server keeps only those); nothing
-- about the treatment. Holds not yet paid are left out.
create function dentbook.feed_events(p_feed_hash bytea, p_from timestamptz, p_to timestamptz)
    returns table (id uuid, kind text, starts_at timestamptz, ends_at timestamptz,
                   patient_name text, updated_at timestamptz)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select b.id, b.kind, b.starts_at, upper(b.during), b.patient_name, b.updated_at
    from doctors d join bookings b on b.tenant_id = d.tenant_id and b.doctor_id = d.id
    where d.feed_hash = p_feed_hash and b.status = 'confirmed'
      and b.starts_at >= p_from and b.starts_at < p_to
    order by b.starts_at, b.id
$$;
grant execute on function dentbook.feed_events(bytea, timestamptz, timestamptz) to dentbook_service;

revoke execute on all functions in schema dentbook from public;
