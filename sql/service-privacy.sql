-- Privacy: the data map read by the code, patients' requests (find, export, erase), the
-- retention run, and the clinic's privacy notice. Re-applied whenever this file changes
-- (functions dropped and re-created).
--
-- The data map is the comments on the columns (sql/schema-7.sql). Nothing here lists a
-- patient's columns by name: the tables that hold a patient's data are bookings and every
-- table with a foreign key to it (found in pg_constraint), and within them the columns to
-- erase or export are found by their class. A column added and classified 'personal' is
-- erased and exported from then on with no change here.
--
-- SECURITY DEFINER with a fixed search_path; forced row level security still applies, so
-- each function sees only the clinic the calling transaction set in app.tenant_id. The
-- staff-level functions check the signed-in account's role first (require_role).

drop function if exists dentbook.column_class, dentbook.visit_tables, dentbook.visit_columns,
    dentbook.erase_visits, dentbook.visits_data, dentbook.visits_data_map,
    dentbook.patient_visits, dentbook.patient_find, dentbook.patient_export,
    dentbook.patient_erase, dentbook.next_retention_at, dentbook.schedule_retention,
    dentbook.run_retention, dentbook.ensure_retention_jobs, dentbook.privacy_controller,
    dentbook.privacy_notice, dentbook.privacy_versions, dentbook.save_privacy_notice,
    dentbook.set_admins_need_2fa cascade;

-- A column's class in the data map ('personal', 'health-revealing', 'payment',
-- 'operational'), or null when it has none.
create function dentbook.column_class(p_table regclass, p_column name) returns text
    language sql stable set search_path = pg_catalog
as $$
    select substring(d.description from '^class: (personal|health-revealing|payment|operational)\M')
    from pg_attribute a
    left join pg_description d on d.objoid = a.attrelid and d.classoid = 'pg_class'::regclass
                              and d.objsubid = a.attnum
    where a.attrelid = p_table and a.attname = p_column and a.attnum > 0 and not a.attisdropped
$$;

-- The tables that hold data about a visit: bookings itself, and every table with a foreign
-- key to it, with the column that names the booking.
create function dentbook.visit_tables() returns table (tbl regclass, booking_col name)
    language sql stable set search_path = pg_catalog
as $$
    select 'dentbook.bookings'::regclass, 'id'::name
    union all
    select c.conrelid::regclass, a.attname
    from pg_constraint c
    cross join lateral unnest(c.conkey, c.confkey) k(col, ref)
    join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.col
    join pg_attribute r on r.attrelid = c.confrelid and r.attnum = k.ref
    where c.contype = 'f' and c.confrelid = 'dentbook.bookings'::regclass and r.attname = 'id'
$$;

-- A table's columns of the given classes, with whether each is generated (it follows its
-- source) and whether it is part of the primary key.
create function dentbook.visit_columns(p_table regclass, p_classes text[])
    returns table (col name, generated boolean, key boolean)
    language sql stable set search_path = dentbook, pg_catalog
as $$
    select a.attname, a.attgenerated <> '', coalesce(a.attnum = any(i.indkey::int2[]), false)
    from pg_attribute a
    left join pg_index i on i.indrelid = a.attrelid and i.indisprimary
    where a.attrelid = p_table and a.attnum > 0 and not a.attisdropped
      and dentbook.column_class(p_table, a.attname) = any(p_classes)
    order by a.attnum
$$;

-- Null every personal column of these bookings and of the rows about them in every table
-- that references bookings; mark the bookings anonymised, revoke their links, stop their
-- messages still due. What is health-revealing or payment stays: it no longer names anyone.
-- Returns the rows changed per table.
create function dentbook.erase_visits(p_bookings uuid[]) returns jsonb
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    t record;
    v_set text;
    v_count integer;
    v_counts jsonb := '{}';
begin
    update messages set state = 'cancelled' where booking_id = any(p_bookings) and state = 'due';
    delete from jobs where kind = 'email' and state = 'due' and booking_id = any(p_bookings);
    update visit_links set revoked_at = now() where booking_id = any(p_bookings) and revoked_at is null;
    for t in select * from dentbook.visit_tables() loop
        select string_agg(format('%I = null', c.col), ', ') into v_set
        from dentbook.visit_columns(t.tbl, array['personal']) c where not c.generated;
        if t.tbl = 'dentbook.bookings'::regclass then
            v_set := concat_ws(', ', v_set, 'anonymised_at = coalesce(anonymised_at, now())');
        end if;
        continue when v_set is null;
        execute format('update %s set %s where %I = any($1)', t.tbl, v_set, t.booking_col)
            using p_bookings;
        get diagnostics v_count = row_count;
        v_counts := v_counts || jsonb_build_object(t.tbl::text, v_count);
    end loop;
    return v_counts;
end
$$;

-- Everything about these bookings the data map calls personal, health-revealing or payment,
-- per table (its key columns beside them), for the patient's copy of their data.
create function dentbook.visits_data(p_bookings uuid[]) returns jsonb
    language plpgsql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    t record;
    v_keep text[];
    v_keys text[];
    v_rows jsonb;
    v_out jsonb := '{}';
begin
    for t in select * from dentbook.visit_tables() loop
        continue when not exists (select from dentbook.visit_columns(t.tbl,
                                      array['personal', 'health-revealing', 'payment']));
        select array_agg(a.attname::text) into v_keys
        from pg_index i join pg_attribute a on a.attrelid = i.indrelid
                                           and a.attnum = any(i.indkey::int2[])
        where i.indrelid = t.tbl and i.indisprimary and a.attname <> 'tenant_id';
        select array_agg(c.col::text) || coalesce(v_keys, '{}') into v_keep
        from dentbook.visit_columns(t.tbl, array['personal', 'health-revealing', 'payment']) c;
        -- Rows with nothing but their keys to show (an e-mail job that never failed) are left out.
        execute format(
            'select coalesce(jsonb_agg(r order by r::text), ''[]'') from ('
            ' select (select jsonb_object_agg(e.key, e.value) from jsonb_each(to_jsonb(x)) e'
            '         where e.key = any($2)) r'
            ' from %s x where %I = any($1)) s'
            ' where exists (select from jsonb_each(r) e where e.key <> all($3)'
            '               and e.value <> ''null''::jsonb)', t.tbl, t.booking_col)
            into v_rows using p_bookings, v_keep, coalesce(v_keys, '{}');
        v_out := v_out || jsonb_build_object(replace(t.tbl::text, 'dentbook.', ''), v_rows);
    end loop;
    return v_out;
end
$$;

-- The classes of the columns the export carries, per table.
create function dentbook.visits_data_map() returns jsonb
    language sql stable set search_path = dentbook, pg_catalog
as $$
    select coalesce(jsonb_object_agg(replace(t.tbl::text, 'dentbook.', ''), m), '{}')
    from dentbook.visit_tables() t,
         lateral (select jsonb_object_agg(c.col, dentbook.column_class(t.tbl, c.col)) m
                  from dentbook.visit_columns(t.tbl, array['personal', 'health-revealing',
                                                           'payment']) c) x
    where m is not null
$$;

-- The visits (and holds) of the person with this e-mail (one mailbox: case and +tags do
-- not matter) or this phone (its last nine digits), not yet anonymised.
create function dentbook.patient_visits(p_email text, p_phone text) returns uuid[]
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select coalesce(array_agg(b.id order by b.starts_at), '{}') from bookings b
    where b.kind = 'visit' and b.anonymised_at is null
      and ((nullif(p_email, '') is not null and b.email_key = dentbook.email_key(p_email))
           or (dentbook.phone_key(p_phone) is not null
               and b.phone_key = dentbook.phone_key(p_phone)))
$$;

-- Admin: a patient's visits, for the patients' requests page. The search is logged (who,
-- by what, how many found), never what was searched for.
create function dentbook.patient_find(p_email text, p_phone text)
    returns table (id uuid, reference text, starts_at timestamptz, ends_at timestamptz,
                   doctor_name text, visit_name_pl text, visit_name_en text, status text,
                   amount_minor integer, currency text, paid boolean, patient_name text,
                   patient_email text, patient_phone text, source text)
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_staff uuid := dentbook.require_role('admin');
    v_ids uuid[] := dentbook.patient_visits(p_email, p_phone);
begin
    perform dentbook.audit_staff(v_staff, 'patient_search', 'patients page',
        jsonb_build_object('by', concat_ws('+', case when nullif(p_email, '') is not null
                                                     then 'email' end,
                                                case when nullif(p_phone, '') is not null
                                                     then 'phone' end),
                           'found', cardinality(v_ids)));
    return query
    select b.id, b.reference, lower(b.during), upper(b.during), d.name, v.name_pl, v.name_en,
           b.status, b.amount_minor, b.currency, b.stripe_payment_intent_id is not null,
           b.patient_name, b.patient_email, b.patient_phone, b.source
    from bookings b
    join doctors d on d.tenant_id = b.tenant_id and d.id = b.doctor_id
    join visit_types v on v.tenant_id = b.tenant_id and v.id = b.visit_type_id
    where b.id = any(v_ids)
    order by lower(b.during) desc;
end
$$;
grant execute on function dentbook.patient_find(text, text) to dentbook_staff;

-- Admin: everything about a patient (GDPR Art. 15 and 20) as one JSON document: their
-- visits and every row about them the data map calls personal, health-revealing or payment,
-- with the classes. Logged with counts. Null when nothing was found.
create function dentbook.patient_export(p_email text, p_phone text) returns jsonb
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_staff uuid := dentbook.require_role('admin');
    v_ids uuid[] := dentbook.patient_visits(p_email, p_phone);
    v_data jsonb;
begin
    if cardinality(v_ids) = 0 then
        perform dentbook.audit_staff(v_staff, 'patient_export', 'nothing found',
                                     jsonb_build_object('visits', 0));
        return null;
    end if;
    v_data := dentbook.visits_data(v_ids);
    perform dentbook.audit_staff(v_staff, 'patient_export', 'data export',
        (select jsonb_object_agg(k, jsonb_array_length(v)) from jsonb_each(v_data) x(k, v)));
    return jsonb_build_object(
        'generated_at', now(),
        'controller', (select jsonb_build_object('name', t.name, 'address', t.address,
                                                 'email', t.email, 'phone', t.phone)
                       from tenants t where t.id = dentbook.current_tenant()),
        'data_map', dentbook.visits_data_map(),
        'data', v_data,
        'privacy_notice_versions', (select coalesce(jsonb_agg(distinct b.privacy_version), '[]')
                                    from bookings b where b.id = any(v_ids)
                                      and b.privacy_version is not null));
end
$$;
grant execute on function dentbook.patient_export(text, text) to dentbook_staff;

-- Admin: erase a patient (GDPR Art. 17). Refused, with nothing changed, while one of their
-- visits is in progress, a payment of theirs is live (a hold not yet lapsed, or money on
-- its way) or a refund to them is still to be made: each would need their details moments
-- later. Otherwise their future visits are cancelled by the clinic first (the whole deposit
-- refunded, the refund made after commit from the payment columns, which stay), their
-- messages still due are stopped, and every personal column of their rows is nulled.
-- What accounting law makes the clinic keep of paid deposits is listed in the answer.
-- Nothing found: nothing changes (not even the log; the search that came first is logged).
create function dentbook.patient_erase(p_email text, p_phone text) returns jsonb
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_staff uuid := dentbook.require_role('admin');
    v_ids uuid[];
    v_reason text;
    v_booking uuid;
    v_cancelled integer := 0;
    v_refunds integer := 0;
    v_refund integer;
    v_counts jsonb;
    v_kept jsonb;
begin
    v_ids := dentbook.patient_visits(p_email, p_phone);
    if cardinality(v_ids) = 0 then
        return jsonb_build_object('outcome', 'nothing_found');
    end if;
    -- Calendar locks first, in one order, as every writer of a booking takes them; then
    -- the rows, so no payment event changes them under us.
    perform dentbook.lock_calendar(d) from (select distinct b.doctor_id d from bookings b
                                            where b.id = any(v_ids) order by 1) x;
    perform 1 from bookings b where b.id = any(v_ids) for update;
    v_ids := dentbook.patient_visits(p_email, p_phone);

    select r, b into v_reason, v_booking from (
        select 'visit_in_progress' r, b.id b, 1 o from bookings b
        where b.id = any(v_ids) and b.status = 'confirmed' and lower(b.during) <= now()
          and upper(b.during) > now()
        union all
        select 'payment_in_progress', b.id, 2 from bookings b
        where b.id = any(v_ids) and b.status = 'pending'
          and (b.payment_processing or b.hold_expires_at > now())
        union all
        select 'refund_pending', r.booking_id, 3 from refunds r
        where r.booking_id = any(v_ids) and r.refunded_at is null
        order by 3 limit 1) x;
    if v_reason is not null then
        perform dentbook.audit_staff(v_staff, 'patient_erase', 'erasure refused',
            jsonb_build_object('refused', v_reason, 'visits', cardinality(v_ids)), v_booking);
        return jsonb_build_object('outcome', 'refused', 'reason', v_reason, 'booking', v_booking);
    end if;

    perform set_config('app.audit_detail', 'cancelled: the patient asked for their data to be erased', true);
    for v_booking in select b.id from bookings b
                     where b.id = any(v_ids) and b.status = 'confirmed' and lower(b.during) > now()
                     order by b.starts_at loop
        v_refund := dentbook.policy_refund(v_booking, 'clinic');
        update bookings set status = 'cancelled', cancelled_by = 'clinic', sequence = sequence + 1,
            updated_at = now()
        where id = v_booking;
        v_cancelled := v_cancelled + 1;
        if dentbook.owe_refund(v_booking, v_refund, 'cancelled') is not null then
            v_refunds := v_refunds + 1;
        end if;
    end loop;

    select coalesce(jsonb_agg(jsonb_build_object(
               'booking', b.id, 'amount_minor', b.amount_minor, 'currency', b.currency,
               'date', b.created_at, 'visit_date', lower(b.during),
               'stripe_payment_intent_id', b.stripe_payment_intent_id,
               'stripe_session_id', b.stripe_session_id, 'stripe_refund_id',
               coalesce(b.stripe_refund_id, r.stripe_refund_id),
               'refund_minor', r.amount_minor) order by b.starts_at), '[]')
    into v_kept
    from bookings b left join refunds r on r.tenant_id = b.tenant_id and r.booking_id = b.id
    where b.id = any(v_ids) and b.stripe_payment_intent_id is not null;

    v_counts := dentbook.erase_visits(v_ids);
    perform dentbook.audit_staff(v_staff, 'patient_erase', 'erased',
        jsonb_build_object('visits', cardinality(v_ids), 'cancelled', v_cancelled,
                           'refunds', v_refunds, 'kept_payments', jsonb_array_length(v_kept),
                           'rows', v_counts));
    return jsonb_build_object('outcome', 'erased', 'visits', cardinality(v_ids),
                              'cancelled', v_cancelled, 'refunds', v_refunds, 'kept', v_kept,
                              'bookings', to_jsonb(v_ids));
end
$$;
grant execute on function dentbook.patient_erase(text, text) to dentbook_staff;

-- Retention runs at night, clinic time: the next 03:00 after now.
create function dentbook.next_retention_at() returns timestamptz
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select (date_trunc('day', now() at time zone t.time_zone) + interval '1 day 3 hours')
           at time zone t.time_zone
    from tenants t where t.id = dentbook.current_tenant()
$$;

-- The clinic's retention job, unless it has one due (a run in progress still counts: its
-- job stays due until the runner marks it done, after the run scheduled the next).
create function dentbook.schedule_retention(p_due timestamptz default null) returns bigint
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_job bigint;
begin
    if exists (select from jobs j where j.kind = 'retention' and j.state = 'due') then
        return null;
    end if;
    insert into jobs (tenant_id, kind, due_at)
    values (dentbook.current_tenant(), 'retention', coalesce(p_due, dentbook.next_retention_at()))
    returning id into v_job;
    return v_job;
end
$$;

-- The clinic's retention run (its job p_job, claimed by the job runner): personal data of
-- unpaid holds is erased unpaid_erasure_days after they lapsed, and visits are anonymised
-- retention_years after they took place, keeping what accounting requires of paid deposits
-- (the payment columns) and nothing that names the patient. Failed sign-ins (the e-mail
-- typed and the client's address) older than the throttling window p_login_window are
-- deleted too, as are lapsed sessions and sign-in challenges. Writes one audit row with the
-- counts, and schedules the next run (once: a run repeated after a crash finds it there).
create function dentbook.run_retention(p_job bigint, p_login_window interval) returns jsonb
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    t tenants;
    v_holds uuid[];
    v_visits uuid[];
    v_failures integer;
    v_result jsonb;
begin
    perform pg_advisory_xact_lock(hashtextextended('retention:' || dentbook.current_tenant(), 0));
    select * into t from tenants x where x.id = dentbook.current_tenant();
    if t.id is null then
        return null;
    end if;
    -- Holds no money ever reached (a refund owed means some did), lapsed or given back.
    select coalesce(array_agg(b.id), '{}') into v_holds from bookings b
    where b.kind = 'visit' and b.anonymised_at is null
      and b.status in ('pending', 'expired', 'released', 'failed') and not b.payment_processing
      and b.hold_expires_at <= now() - make_interval(days => t.unpaid_erasure_days)
      and (b.stripe_payment_intent_id is null or b.status = 'failed')
      and not exists (select from refunds r where r.booking_id = b.id);
    -- Visits past the retention period, unless a refund to the patient is still to be made.
    select coalesce(array_agg(b.id), '{}') into v_visits from bookings b
    where b.kind = 'visit' and b.anonymised_at is null and b.id <> all(v_holds)
      and upper(b.during) <= now() - make_interval(years => t.retention_years)
      and not (b.status = 'pending' and (b.payment_processing or b.hold_expires_at > now()))
      and not exists (select from refunds r where r.booking_id = b.id and r.refunded_at is null);
    perform dentbook.erase_visits(v_holds || v_visits);
    delete from login_failures f where f.at <= now() - p_login_window;
    get diagnostics v_failures = row_count;
    delete from staff_sessions s where s.expires_at <= now();
    delete from staff_challenges c where c.expires_at <= now();
    v_result := jsonb_build_object('holds_erased', cardinality(v_holds),
                                   'visits_anonymised', cardinality(v_visits),
                                   'login_failures_deleted', v_failures,
                                   'unpaid_erasure_days', t.unpaid_erasure_days,
                                   'retention_years', t.retention_years);
    insert into audit_log (tenant_id, actor, action, detail, after)
    values (t.id, 'system', 'retention', 'retention run', v_result);
    if not exists (select from jobs j where j.kind = 'retention' and j.state = 'due'
                   and j.id <> p_job) then
        insert into jobs (tenant_id, kind, due_at)
        values (t.id, 'retention', dentbook.next_retention_at());
    end if;
    return v_result;
end
$$;
grant execute on function dentbook.run_retention(bigint, interval) to dentbook_service;

-- Worker level, when a job runner starts: every clinic has its retention job (one made
-- before retention existed, or whose job failed for good, gets one due now). One caller at
-- a time (processes starting together), so none makes a second job; each clinic is entered
-- in turn, as row level security wants.
create function dentbook.ensure_retention_jobs() returns integer
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_tenant uuid;
    v_made integer := 0;
begin
    perform pg_advisory_xact_lock(hashtextextended('retention-ensure', 0));
    for v_tenant in select id from tenants order by id loop
        perform set_config('app.tenant_id', v_tenant::text, true);
        if dentbook.schedule_retention(now()) is not null then
            v_made := v_made + 1;
        end if;
    end loop;
    perform set_config('app.tenant_id', '', true);
    return v_made;
end
$$;
grant execute on function dentbook.ensure_retention_jobs() to dentbook_worker;

-- The privacy notice's controller and what the default notice is filled from.
create function dentbook.privacy_controller()
    returns table (name text, address text, email text, phone text, retention_years integer,
                   unpaid_erasure_days integer, current_version integer)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select t.name, t.address, t.email, t.phone, t.retention_years, t.unpaid_erasure_days,
           coalesce((select max(p.version) from privacy_notices p), 0)
    from tenants t where t.id = dentbook.current_tenant()
$$;
grant execute on function dentbook.privacy_controller()
    to dentbook_anon, dentbook_staff, dentbook_service;

-- One version of the clinic's own notice (none for version 0: the default template).
create function dentbook.privacy_notice(p_version integer)
    returns table (version integer, body_pl text, body_en text, created_at timestamptz)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select p.version, p.body_pl, p.body_en, p.created_at from privacy_notices p
    where p.version = p_version
$$;
grant execute on function dentbook.privacy_notice(integer)
    to dentbook_anon, dentbook_staff, dentbook_service;

create function dentbook.privacy_versions()
    returns table (version integer, created_at timestamptz)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$ select p.version, p.created_at from privacy_notices p order by p.version desc $$;
grant execute on function dentbook.privacy_versions() to dentbook_anon, dentbook_staff;

-- Admin: a new version of the clinic's notice; earlier ones are kept (bookings name them).
create function dentbook.save_privacy_notice(p_pl text, p_en text) returns integer
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_staff uuid := dentbook.require_role('admin');
    v_version integer;
begin
    perform pg_advisory_xact_lock(hashtextextended('privacy-notice:' || dentbook.current_tenant(), 0));
    insert into privacy_notices (tenant_id, version, body_pl, body_en, created_by)
    select dentbook.current_tenant(), coalesce(max(p.version), 0) + 1, p_pl, p_en, v_staff
    from privacy_notices p
    returning version into v_version;
    perform dentbook.audit_staff(v_staff, 'privacy_notice', 'new version',
                                 jsonb_build_object('version', v_version));
    return v_version;
end
$$;
grant execute on function dentbook.save_privacy_notice(text, text) to dentbook_staff;

-- Admin: whether the clinic's admins must sign in with a second factor.
create function dentbook.set_admins_need_2fa(p_on boolean) returns boolean
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_staff uuid := dentbook.require_role('admin');
begin
    update tenants set admins_need_2fa = p_on
    where id = dentbook.current_tenant() and admins_need_2fa <> p_on;
    if found then
        perform dentbook.audit_staff(v_staff, 'settings', 'admins must use two-factor sign-in',
                                     jsonb_build_object('admins_need_2fa', p_on));
    end if;
    return p_on;
end
$$;
grant execute on function dentbook.set_admins_need_2fa(boolean) to dentbook_staff;

revoke execute on all functions in schema dentbook from public;
