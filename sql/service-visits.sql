-- Service level, the patient's visit after payment: messages to send (the outbox), the
-- reminders, refunds owed by the cancellation policy, roles, and what the patient's own
-- link may do (see, cancel, reschedule). Re-applied whenever this file changes.
--
-- SECURITY DEFINER with a fixed search_path; forced row level security still applies, so
-- each function sees only the clinic the calling transaction set in app.tenant_id. The
-- helpers without a grant are called only from inside other functions of ours.

drop function if exists dentbook.require_role, dentbook.enqueue_message,
    dentbook.schedule_reminders, dentbook.cancel_reminders, dentbook.owe_refund,
    dentbook.policy_refund, dentbook.visit_cancelled, dentbook.add_visit_link,
    dentbook.visit_link_generation, dentbook.visit_by_link,
    dentbook.cancel_by_link, dentbook.reschedule_by_link, dentbook.message_to_send,
    dentbook.message_sent, dentbook.message_dropped, dentbook.new_reference,
    dentbook.visit_details cascade;

-- The signed-in account of this transaction (app.staff_id), if it is active and its role
-- is at least p_min ('viewer' < 'reception' < 'admin'); otherwise SQLSTATE DBK40. The web
-- layer's guards check the same, first: a route that forgot its guard still cannot write.
create function dentbook.require_role(p_min text) returns uuid
    language plpgsql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_id uuid := nullif(current_setting('app.staff_id', true), '')::uuid;
    v_role text;
begin
    select a.role into v_role from staff_accounts a where a.id = v_id and a.active;
    if v_role is null or array_position(array['viewer', 'reception', 'admin'], v_role)
                        < array_position(array['viewer', 'reception', 'admin'], p_min) then
        raise exception 'forbidden' using errcode = 'DBK40';
    end if;
    return v_id;
end
$$;
grant execute on function dentbook.require_role(text) to dentbook_staff;

-- A short reference a patient can read out on the phone (10 hex digits).
create function dentbook.new_reference() returns text
    language sql volatile set search_path = pg_catalog
as $$ select upper(left(replace(gen_random_uuid()::text, '-', ''), 10)) $$;

-- Write a message to the outbox, and its job, in the caller's transaction: sent after the
-- commit (a rolled-back change sends nothing), at p_due. None for a visit without e-mail.
create function dentbook.enqueue_message(p_booking uuid, p_kind text,
                                         p_due timestamptz default now())
    returns bigint
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    b bookings;
    v_id bigint;
begin
    select * into b from bookings x where x.id = p_booking;
    if b.patient_email is null or b.kind <> 'visit' then
        return null;
    end if;
    insert into messages (tenant_id, booking_id, kind, to_address, locale, sequence)
    values (b.tenant_id, b.id, p_kind, b.patient_email, b.locale, b.sequence)
    returning id into v_id;
    insert into jobs (tenant_id, kind, booking_id, ref, due_at)
    values (b.tenant_id, 'email', b.id, v_id, p_due);
    return v_id;
end
$$;

-- The clinic's reminders for a visit, each at its offset before the start; none whose
-- time has passed (a visit booked inside the offset gets no reminder).
create function dentbook.schedule_reminders(p_booking uuid) returns integer
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_due timestamptz;
    v_count integer := 0;
begin
    for v_due in
        select b.starts_at - make_interval(hours => h)
        from bookings b join tenants t on t.id = b.tenant_id, unnest(t.reminder_hours) h
        where b.id = p_booking and b.kind = 'visit' and b.status = 'confirmed'
    loop
        if v_due > now() then
            perform dentbook.enqueue_message(p_booking, 'reminder', v_due);
            v_count := v_count + 1;
        end if;
    end loop;
    return v_count;
end
$$;

-- Reminders not yet sent stop being due (the visit was cancelled or moved).
create function dentbook.cancel_reminders(p_booking uuid) returns integer
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_count integer;
begin
    with gone as (
        update messages set state = 'cancelled'
        where booking_id = p_booking and kind = 'reminder' and state = 'due'
        returning id)
    delete from jobs j using gone where j.kind = 'email' and j.ref = gone.id and j.state = 'due';
    get diagnostics v_count = row_count;
    return v_count;
end
$$;

-- Money owed back to a patient, recorded with its job in the caller's transaction and made
-- through Stripe after the commit (one refund per booking, ever: the refunds key). Nothing
-- when nothing was paid. Returns the job.
create function dentbook.owe_refund(p_booking uuid, p_amount integer, p_reason text)
    returns bigint
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    b bookings;
    v_job bigint;
begin
    select * into b from bookings x where x.id = p_booking;
    if p_amount <= 0 or b.stripe_payment_intent_id is null then
        return null;
    end if;
    insert into refunds (tenant_id, booking_id, amount_minor, currency, payment_intent, reason)
    values (b.tenant_id, b.id, p_amount, b.currency, b.stripe_payment_intent_id, p_reason)
    on conflict do nothing;
    if not found then
        return null;
    end if;
    insert into jobs (tenant_id, kind, booking_id) values (b.tenant_id, 'refund', b.id)
    returning id into v_job;
    return v_job;
end
$$;

-- What cancelling a confirmed visit now refunds: a clinic's own cancellation all of the
-- deposit paid; a patient's all of it until the clinic's window closes, then its late share.
create function dentbook.policy_refund(p_booking uuid, p_by text) returns integer
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select case
        when b.stripe_payment_intent_id is null or b.status <> 'confirmed' then 0
        when p_by = 'clinic' or now() <= b.starts_at - make_interval(hours => t.cancel_window_hours)
            then b.amount_minor
        else b.amount_minor * t.late_refund_percent / 100
    end
    from bookings b join tenants t on t.id = b.tenant_id where b.id = p_booking
$$;

-- What follows a visit's cancellation (by the patient or the clinic), in the caller's
-- transaction: its reminders stop, p_refund is owed back (nothing when nothing was paid),
-- and the patient is told.
create function dentbook.visit_cancelled(p_booking uuid, p_refund integer) returns void
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
begin
    perform dentbook.cancel_reminders(p_booking);
    perform dentbook.owe_refund(p_booking, p_refund, 'cancelled');
    perform dentbook.enqueue_message(p_booking, 'cancellation');
end
$$;

-- The patient's link to a visit (SHA-256 of its token; the server derives the token from
-- its secret, the booking and the link's generation), valid until some days after the visit.
create function dentbook.add_visit_link(p_booking uuid, p_token_hash bytea, p_after interval)
    returns timestamptz
    language sql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    insert into visit_links (tenant_id, token_hash, booking_id, expires_at)
    select b.tenant_id, p_token_hash, b.id, upper(b.during) + p_after
    from bookings b where b.id = p_booking
    on conflict (tenant_id, token_hash) do update set expires_at = excluded.expires_at
    returning expires_at
$$;
grant execute on function dentbook.add_visit_link(uuid, bytea, interval) to dentbook_service;

-- How many of the visit's links were revoked: the server derives the next link from it, so
-- after a revocation the visit gets a new link instead of the dead one.
create function dentbook.visit_link_generation(p_booking uuid) returns integer
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select count(*)::integer from visit_links where booking_id = p_booking and revoked_at is not null
$$;
grant execute on function dentbook.visit_link_generation(uuid) to dentbook_service;

-- What the holder of a valid link may see: the visit, and what cancelling now refunds.
create function dentbook.visit_by_link(p_token_hash bytea)
    returns table (id uuid, reference text, doctor_id uuid, doctor_name text,
                   visit_type_id uuid, starts_at timestamptz, ends_at timestamptz, status text,
                   locale text, amount_minor integer, currency text, paid boolean,
                   refund_now integer, refunded_minor integer, reschedulable boolean,
                   cancellable boolean, sequence integer, link_expires_at timestamptz)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select b.id, b.reference, b.doctor_id, d.name, b.visit_type_id, lower(b.during),
           upper(b.during), b.status, b.locale, b.amount_minor, b.currency,
           b.stripe_payment_intent_id is not null and b.status in ('confirmed', 'cancelled'),
           dentbook.policy_refund(b.id, 'patient'),
           (select r.amount_minor from refunds r where r.booking_id = b.id
            and r.refunded_at is not null),
           b.status = 'confirmed'
               and now() < lower(b.during) - make_interval(hours => t.cancel_window_hours),
           b.status = 'confirmed' and now() < lower(b.during),
           b.sequence, l.expires_at
    from visit_links l
    join bookings b on b.tenant_id = l.tenant_id and b.id = l.booking_id
    join doctors d on d.tenant_id = b.tenant_id and d.id = b.doctor_id
    join tenants t on t.id = b.tenant_id
    where l.token_hash = p_token_hash and l.revoked_at is null and l.expires_at > now()
      and b.kind = 'visit'
$$;
grant execute on function dentbook.visit_by_link(bytea) to dentbook_anon, dentbook_service;

-- The patient cancels through their link: a guarded transition (only a confirmed visit
-- that has not started), the slot free at once, reminders stopped, the cancellation
-- e-mail and the policy's refund recorded in this transaction. SQLSTATE DBK10 when it
-- cannot be cancelled (already cancelled, or started). Returns the refund owed.
create function dentbook.cancel_by_link(p_token_hash bytea)
    returns integer
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_booking uuid;
    v_refund integer;
begin
    select l.booking_id into v_booking from visit_links l
    where l.token_hash = p_token_hash and l.revoked_at is null and l.expires_at > now();
    if v_booking is null then
        raise exception 'no such visit' using errcode = 'DBK04';
    end if;
    perform dentbook.lock_calendar(b.doctor_id) from bookings b where b.id = v_booking;
    v_refund := dentbook.policy_refund(v_booking, 'patient');
    perform set_config('app.actor', 'patient', true);
    perform set_config('app.audit_detail', 'cancelled by the patient', true);
    update bookings set status = 'cancelled', cancelled_by = 'patient', sequence = sequence + 1,
        updated_at = now()
    where id = v_booking and status = 'confirmed' and lower(during) > now();
    if not found then
        raise exception 'this visit cannot be cancelled now' using errcode = 'DBK10';
    end if;
    perform dentbook.visit_cancelled(v_booking, v_refund);
    return v_refund;
end
$$;
grant execute on function dentbook.cancel_by_link(bytea) to dentbook_service;

-- The patient moves the visit through their link, until the cancellation window closes:
-- one guarded UPDATE of its time, so the exclusion constraint decides. The visit moves or
-- stays (23P01: taken), never both slots, never neither; the deposit carries over.
-- SQLSTATE DBK11 when it may no longer be moved, DBK01 when the new start is not offered.
create function dentbook.reschedule_by_link(p_token_hash bytea, p_start timestamptz,
                                            p_min_notice interval, p_window interval,
                                            p_link_after interval)
    returns table (starts_at timestamptz, ends_at timestamptz)
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    b bookings;
    v_during tstzrange;
    v_window interval;
begin
    select x.* into b from visit_links l join bookings x on x.tenant_id = l.tenant_id
                                                        and x.id = l.booking_id
    where l.token_hash = p_token_hash and l.revoked_at is null and l.expires_at > now();
    if b.id is null then
        raise exception 'no such visit' using errcode = 'DBK04';
    end if;
    select make_interval(hours => t.cancel_window_hours) into v_window
    from tenants t where t.id = b.tenant_id;
    v_during := tstzrange(p_start, p_start + (upper(b.during) - lower(b.during)), '[)');
    if b.status <> 'confirmed' or now() >= lower(b.during) - v_window then
        raise exception 'this visit can no longer be moved' using errcode = 'DBK11';
    end if;
    if p_start > now() + p_window
       or not dentbook.slot_is_offered(b.doctor_id, v_during, p_min_notice) then
        raise exception 'not an offered slot' using errcode = 'DBK01';
    end if;
    perform dentbook.lock_calendar(b.doctor_id);
    perform set_config('app.actor', 'patient', true);
    perform set_config('app.audit_detail', 'moved by the patient', true);
    update bookings x set during = v_during, sequence = x.sequence + 1, updated_at = now()
    where x.id = b.id and x.status = 'confirmed' and x.during = b.during;
    if not found then
        raise exception 'this visit changed meanwhile' using errcode = 'DBK11';
    end if;
    perform dentbook.cancel_reminders(b.id);
    perform dentbook.schedule_reminders(b.id);
    update visit_links set expires_at = upper(v_during) + p_link_after
    where booking_id = b.id and revoked_at is null;
    perform dentbook.enqueue_message(b.id, 'reschedule');
    return query select lower(v_during), upper(v_during);
end
$$;
grant execute on function dentbook.reschedule_by_link(bytea, timestamptz, interval, interval,
                                                      interval) to dentbook_service;

-- A message the job runner is about to send: who to, in which language, about what.
create function dentbook.message_to_send(p_message bigint)
    returns table (booking_id uuid, kind text, to_address text, locale text, sequence integer,
                   state text)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select m.booking_id, m.kind, m.to_address, m.locale, m.sequence, m.state
    from messages m where m.id = p_message
$$;
grant execute on function dentbook.message_to_send(bigint) to dentbook_service;

-- It went out: what was sent is kept (for the patient's data export), once.
create function dentbook.message_sent(p_message bigint, p_subject text, p_message_id text)
    returns boolean
    language sql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    with u as (
        update messages set state = 'sent', sent_at = now(), subject = left(p_subject, 300),
            message_id = p_message_id
        where id = p_message and state = 'due' returning 1)
    select exists (select from u)
$$;
grant execute on function dentbook.message_sent(bigint, text, text) to dentbook_service;

-- It will never go out: its patient was erased (or anonymised) before it was sent.
create function dentbook.message_dropped(p_message bigint)
    returns boolean
    language sql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    with u as (update messages set state = 'cancelled' where id = p_message and state = 'due'
               returning 1)
    select exists (select from u)
$$;
grant execute on function dentbook.message_dropped(bigint) to dentbook_service;

-- Everything a message (or the calendar file) about a visit says, as it is now.
create function dentbook.visit_details(p_booking uuid)
    returns table (id uuid, slug text, reference text, clinic_name text, clinic_address text,
                   clinic_phone text, clinic_email text, time_zone text, doctor_name text,
                   starts_at timestamptz, ends_at timestamptz, status text, deposit_minor integer,
                   refund_minor integer, refund_reason text, currency text, patient_name text,
                   patient_email text, locale text, cancel_window_hours integer,
                   late_refund_percent integer, sequence integer, cancelled_by text)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select b.id, t.slug, b.reference, t.name, t.address, t.phone, t.email, t.time_zone, d.name,
           lower(b.during), upper(b.during), b.status,
           case when b.stripe_payment_intent_id is not null then b.amount_minor else 0 end,
           coalesce(r.amount_minor, 0), r.reason, b.currency, b.patient_name, b.patient_email,
           b.locale, t.cancel_window_hours, t.late_refund_percent, b.sequence, b.cancelled_by
    from bookings b
    join tenants t on t.id = b.tenant_id
    join doctors d on d.tenant_id = b.tenant_id and d.id = b.doctor_id
    left join refunds r on r.tenant_id = b.tenant_id and r.booking_id = b.id
    where b.id = p_booking and b.kind = 'visit'
$$;
grant execute on function dentbook.visit_details(uuid) to dentbook_service;

revoke execute on all functions in schema dentbook from public;
