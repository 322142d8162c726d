-- Service level, payments: what Stripe told us, applied exactly once, and refunds.
-- Re-applied whenever this file changes (functions dropped and re-created).
--
-- SECURITY DEFINER with a fixed search_path; forced row level security still applies, so
-- each function sees only the clinic the calling transaction set in app.tenant_id (the
-- clinic named in the Checkout Session's metadata, which we wrote).

drop function if exists dentbook.record_webhook_event, dentbook.apply_payment_event,
    dentbook.payment_event, dentbook.refund_due, dentbook.complete_refund cascade;

-- Apply one verified Stripe event about a booking's Checkout Session, in one step: the
-- event id is recorded (a replay changes nothing) and the effect is a guarded transition
-- on the locked booking row, so duplicates, replays and out-of-order events about one
-- session settle to one outcome. p_kind: 'paid', 'processing', 'failed' or 'expired'.
-- Money is accepted only when amount and currency are what the booking asked for.
--
-- Outcomes: 'unknown' (no such clinic, or no booking with this session here: another
-- system on the same Stripe account, or a deleted clinic), 'replay', 'confirmed',
-- 'processing', 'released', 'refund' (money arrived that is not ours to keep: a refund is
-- recorded with its job, made after commit), or 'noop'.
create function dentbook.payment_event(
    p_event_id text, p_type text, p_booking uuid, p_session text, p_kind text,
    p_payment_intent text, p_amount integer, p_currency text, p_processing_hold interval)
    returns table (outcome text, job bigint)
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    b bookings;
    v_mismatch boolean;
    v_job bigint;
begin
    if not exists (select from tenants t where t.id = dentbook.current_tenant())
       or not exists (select from bookings x where x.id = p_booking
                      and (x.stripe_session_id = p_session or x.stripe_session_id is null)) then
        return query select 'unknown'::text, null::bigint;
        return;
    end if;
    insert into webhook_events (tenant_id, event_id, type)
    values (dentbook.current_tenant(), p_event_id, p_type) on conflict do nothing;
    if not found then
        return query select 'replay'::text, null::bigint;
        return;
    end if;

    perform dentbook.lock_calendar(x.doctor_id) from bookings x where x.id = p_booking;
    select * into b from bookings x where x.id = p_booking for update;
    perform set_config('app.actor', 'stripe', true);
    perform set_config('app.audit_detail', 'stripe ' || p_type, true);
    v_mismatch := p_kind in ('paid', 'processing')
        and (p_amount is distinct from b.amount_minor or p_currency is distinct from b.currency);

    if b.status = 'pending' and b.hold_expires_at <= now() then
        -- The hold lapsed before this news arrived: it is not ours to fill any more.
        update bookings set status = 'expired', updated_at = now() where id = b.id;
        b.status := 'expired';
    end if;
    if v_mismatch and b.status = 'pending' then
        perform set_config('app.audit_detail', format('stripe %s: amount %s %s, expected %s %s',
            p_type, p_amount, p_currency, b.amount_minor, b.currency), true);
        update bookings set status = 'failed', payment_processing = false, updated_at = now()
        where id = b.id;
        b.status := 'failed';
    end if;

    if p_kind = 'paid' and b.status = 'pending' then
        update bookings set status = 'confirmed', payment_processing = false,
            stripe_payment_intent_id = p_payment_intent, updated_at = now()
        where id = b.id;
        perform dentbook.enqueue_message(b.id, 'confirmation');
        perform dentbook.schedule_reminders(b.id);
        return query select 'confirmed'::text, null::bigint;
    elsif p_kind = 'paid' and b.status in ('expired', 'released', 'failed')
          and p_payment_intent is not null then
        update bookings set stripe_payment_intent_id = p_payment_intent, updated_at = now()
        where id = b.id;
        insert into refunds (tenant_id, booking_id, amount_minor, currency, payment_intent, reason)
        values (b.tenant_id, b.id, coalesce(p_amount, b.amount_minor),
                coalesce(p_currency, b.currency), p_payment_intent,
                case when v_mismatch then 'amount_mismatch' else 'paid_after_expiry' end)
        on conflict do nothing;
        if not found then  -- already owed (a second event about the same money)
            return query select 'noop'::text, null::bigint;
            return;
        end if;
        insert into jobs (tenant_id, kind, booking_id) values (b.tenant_id, 'refund', b.id)
        returning id into v_job;
        return query select 'refund'::text, v_job;
    elsif p_kind = 'processing' and b.status = 'pending' and not b.payment_processing then
        update bookings set payment_processing = true, stripe_payment_intent_id = p_payment_intent,
            hold_expires_at = greatest(hold_expires_at, least(now() + p_processing_hold, lower(during))),
            updated_at = now()
        where id = b.id;
        perform dentbook.enqueue_message(b.id, 'processing');
        return query select 'processing'::text, null::bigint;
    elsif p_kind = 'processing' and v_mismatch then
        return query select 'released'::text, null::bigint;
    elsif p_kind = 'failed' and b.status = 'pending' then
        update bookings set status = 'failed', payment_processing = false, updated_at = now()
        where id = b.id;
        if b.payment_processing then  -- the patient was told the payment was on its way
            perform dentbook.enqueue_message(b.id, 'payment_failed');
        end if;
        return query select 'released'::text, null::bigint;
    elsif p_kind = 'expired' and b.status = 'pending' and not b.payment_processing then
        update bookings set status = 'expired', updated_at = now() where id = b.id;
        return query select 'released'::text, null::bigint;
    else
        return query select 'noop'::text, null::bigint;
    end if;
end
$$;
grant execute on function dentbook.payment_event(text, text, uuid, text, text, text, integer, text,
    interval) to dentbook_service;

-- A recorded refund, for its job: what to ask Stripe for (null when already made).
create function dentbook.refund_due(p_booking uuid)
    returns table (amount_minor integer, currency text, payment_intent text, reason text)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select r.amount_minor, r.currency, r.payment_intent, r.reason from refunds r
    where r.booking_id = p_booking and r.stripe_refund_id is null
$$;
grant execute on function dentbook.refund_due(uuid) to dentbook_service;

-- Stripe made the refund: recorded once; a booking whose money it was ends refunded.
create function dentbook.complete_refund(p_booking uuid, p_refund_id text)
    returns boolean
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_reason text;
begin
    update refunds set stripe_refund_id = p_refund_id, refunded_at = now()
    where booking_id = p_booking and stripe_refund_id is null
    returning reason into v_reason;
    if not found then
        return false;
    end if;
    perform set_config('app.actor', 'stripe', true);
    perform set_config('app.audit_detail', replace(v_reason, '_', ' ') || ': refunded ' || p_refund_id, true);
    -- Money for a hold that was not ours: the booking ends refunded. A cancelled visit
    -- stays cancelled, its refund recorded beside it.
    update bookings set status = 'refunded', paid_after_expiry = (v_reason = 'paid_after_expiry'),
        stripe_refund_id = p_refund_id, payment_processing = false, updated_at = now()
    where id = p_booking and status in ('expired', 'released', 'failed');
    perform dentbook.enqueue_message(p_booking, 'refund');
    return true;
end
$$;
grant execute on function dentbook.complete_refund(uuid, text) to dentbook_service;

revoke execute on all functions in schema dentbook from public;
