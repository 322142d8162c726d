-- Service level, staff sign-in: credentials, the second factor (TOTP and recovery codes),
-- server-side sessions, throttling of failed attempts, and sign-ins and sign-outs in the
-- audit log. Re-applied whenever this file changes (functions are dropped and re-created).
--
-- SECURITY DEFINER with a fixed search_path, and forced row level security still
-- applies, so each function sees only the clinic the calling transaction set in
-- app.tenant_id: another clinic's account or session cookie simply does not exist here.
-- Only the service level may call them; the staff level stays read-only on clinic data
-- and never sees password hashes or sessions.

drop function if exists dentbook.staff_credentials, dentbook.staff_set_hash,
    dentbook.staff_session_start, dentbook.staff_session_touch, dentbook.staff_session_end,
    dentbook.staff_sessions_end_all, dentbook.record_login_failure, dentbook.login_retry_after,
    dentbook.login_attempt, dentbook.login_attempt_passed, dentbook.staff_challenge_start,
    dentbook.staff_challenge, dentbook.staff_totp_used, dentbook.staff_recovery_used,
    dentbook.staff_totp_state, dentbook.staff_totp_begin, dentbook.staff_totp_confirm,
    dentbook.staff_totp_disable, dentbook.staff_second_factor, dentbook.audit_staff,
    dentbook.announce_session_end, dentbook.end_sessions cascade;

-- An audit row about something a staff account did itself (its sign-in, sign-out or second
-- factor; a read or search of patients' data, an erasure, ...): what (p_action, p_detail),
-- where there is one the visit it concerns and what it came to (ids and counts, never a
-- patient's data).
create function dentbook.audit_staff(p_staff uuid, p_action text, p_detail text,
                                     p_after jsonb default null, p_booking uuid default null)
    returns void
    language sql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    insert into audit_log (tenant_id, booking_id, actor, staff_id, action, detail, after)
    values (dentbook.current_tenant(), p_booking, 'staff', p_staff, p_action, p_detail, p_after)
$$;

-- The active account behind an e-mail at this clinic, with its password hash and whether
-- it signs in with a second factor: none for a deactivated account, or one invited that has
-- not set its password yet.
create function dentbook.staff_credentials(p_email text)
    returns table (id uuid, password_hash text, second_factor boolean)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select id, password_hash, totp_enabled_at is not null from staff_accounts
    where email = lower(p_email) and active and password_hash is not null
$$;

-- Store a password re-hashed at sign-in because the hash used older argon2 parameters.
create function dentbook.staff_set_hash(p_staff uuid, p_hash text)
    returns boolean
    language sql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    with u as (update staff_accounts set password_hash = p_hash where id = p_staff returning 1)
    select exists (select from u)
$$;

-- A successful sign-in (attempt p_attempt of login_attempt, the last step's): a new session
-- (only the SHA-256 of its id is stored), the browser's previous session ends, this
-- clinic's lapsed sessions are swept, the account's pending second steps end, and the
-- account's failures from this client address (this attempt included) are forgotten;
-- failures from elsewhere still count against their address. Logged with how the person
-- signed in (p_method). Returns the absolute expiry.
create function dentbook.staff_session_start(
    p_staff uuid, p_id_hash bytea, p_old_hash bytea, p_idle interval, p_absolute interval,
    p_attempt bigint, p_method text)
    returns timestamptz
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_expires timestamptz := now() + p_absolute;
begin
    delete from staff_sessions s
    where s.id_hash = p_old_hash or s.expires_at <= now() or s.last_seen_at <= now() - p_idle;
    delete from staff_challenges c where c.staff_id = p_staff or c.expires_at <= now();
    delete from login_failures f
    where f.email = (select a.email from staff_accounts a where a.id = p_staff)
      and f.client_ip is not distinct from (select x.client_ip from login_failures x
                                            where x.id = p_attempt);
    insert into staff_sessions (tenant_id, id_hash, staff_id, expires_at)
    values (dentbook.current_tenant(), p_id_hash, p_staff, v_expires);
    perform dentbook.audit_staff(p_staff, 'signin', p_method);
    return v_expires;
end
$$;

-- The password was right and a second factor is due: the browser gets a challenge (only
-- the SHA-256 of its cookie is stored) valid for p_ttl. Only this attempt is forgotten:
-- earlier failures from this address still count, so entering the password again never
-- resets the count of wrong codes. Returns the challenge's expiry.
create function dentbook.staff_challenge_start(p_staff uuid, p_id_hash bytea, p_ttl interval,
                                               p_attempt bigint)
    returns timestamptz
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_expires timestamptz := now() + p_ttl;
begin
    delete from staff_challenges c where c.expires_at <= now();
    delete from login_failures f where f.id = p_attempt;
    insert into staff_challenges (tenant_id, id_hash, staff_id, expires_at)
    values (dentbook.current_tenant(), p_id_hash, p_staff, v_expires);
    return v_expires;
end
$$;

-- The account a valid challenge is for, with what checks its code.
create function dentbook.staff_challenge(p_id_hash bytea)
    returns table (staff_id uuid, email text, totp_secret text, totp_last_counter bigint)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select a.id, a.email, a.totp_secret, a.totp_last_counter
    from staff_challenges c join staff_accounts a on a.tenant_id = c.tenant_id and a.id = c.staff_id
    where c.id_hash = p_id_hash and c.expires_at > now() and a.active
      and a.totp_enabled_at is not null
$$;

-- The account's second factor, for checking a code before turning it off.
create function dentbook.staff_second_factor(p_staff uuid)
    returns table (staff_id uuid, email text, totp_secret text, totp_last_counter bigint)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select a.id, a.email, a.totp_secret, a.totp_last_counter from staff_accounts a
    where a.id = p_staff and a.totp_enabled_at is not null
$$;

-- A TOTP code matched time step p_counter: accepted only if no code of that step or a
-- later one was accepted before (compare-and-set, so two requests racing with one code
-- cannot both pass).
create function dentbook.staff_totp_used(p_staff uuid, p_counter bigint)
    returns boolean
    language sql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    with u as (
        update staff_accounts set totp_last_counter = p_counter
        where id = p_staff and totp_enabled_at is not null
          and (totp_last_counter is null or totp_last_counter < p_counter)
        returning 1)
    select exists (select from u)
$$;

-- A recovery code (its SHA-256), used up if it was unused.
create function dentbook.staff_recovery_used(p_staff uuid, p_hash text)
    returns boolean
    language sql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    with u as (
        update staff_recovery_codes set used_at = now()
        where staff_id = p_staff and code_hash = p_hash and used_at is null
        returning 1)
    select exists (select from u)
$$;

-- The signed-in account's second factor: on or not, the secret being enrolled (never the
-- secret of a factor already on), and how many recovery codes are left.
create function dentbook.staff_totp_state(p_staff uuid)
    returns table (enabled boolean, pending_secret text, recovery_left integer)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select a.totp_enabled_at is not null,
           case when a.totp_enabled_at is null then a.totp_secret end,
           (select count(*)::integer from staff_recovery_codes r
            where r.staff_id = a.id and r.used_at is null)
    from staff_accounts a where a.id = p_staff and a.active
$$;

-- Enrolment starts: the account keeps p_secret until it is confirmed, unless it already has
-- one waiting (a reload shows the QR code already scanned). Returns the secret to show.
create function dentbook.staff_totp_begin(p_staff uuid, p_secret text)
    returns text
    language sql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    update staff_accounts set totp_secret = coalesce(totp_secret, p_secret)
    where id = p_staff and totp_enabled_at is null and active
    returning totp_secret
$$;

-- Enrolment confirmed with a code of time step p_counter: the factor is on, and the
-- recovery codes (their SHA-256) replace any earlier ones.
create function dentbook.staff_totp_confirm(p_staff uuid, p_counter bigint, p_hashes text[])
    returns boolean
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
begin
    update staff_accounts set totp_enabled_at = now(), totp_last_counter = p_counter
    where id = p_staff and totp_enabled_at is null and totp_secret is not null;
    if not found then
        return false;
    end if;
    delete from staff_recovery_codes where staff_id = p_staff;
    insert into staff_recovery_codes (tenant_id, staff_id, code_hash)
    select dentbook.current_tenant(), p_staff, h from unnest(p_hashes) h;
    perform dentbook.audit_staff(p_staff, 'second_factor', 'turned on');
    return true;
end
$$;

-- Turning the factor off, with a code: a TOTP code of step p_counter (compare-and-set as at
-- sign-in) or an unused recovery code. The secret and the recovery codes are deleted.
create function dentbook.staff_totp_disable(p_staff uuid, p_counter bigint, p_recovery_hash text)
    returns boolean
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
begin
    if not ((p_counter is not null and dentbook.staff_totp_used(p_staff, p_counter))
            or (p_recovery_hash is not null and dentbook.staff_recovery_used(p_staff, p_recovery_hash))) then
        return false;
    end if;
    update staff_accounts set totp_secret = null, totp_enabled_at = null, totp_last_counter = null
    where id = p_staff;
    delete from staff_recovery_codes where staff_id = p_staff;
    perform dentbook.audit_staff(p_staff, 'second_factor', 'turned off');
    return true;
end
$$;

-- A session in use: valid while neither its idle nor its absolute limit has passed and its
-- account is active, and using it restarts the idle limit. A lapsed session is deleted.
-- Returns its account, and whether it must enrol a second factor before anything else (an
-- admin without one at a clinic that requires it).
create function dentbook.staff_session_touch(p_id_hash bytea, p_idle interval)
    returns table (staff_id uuid, email text, role text, must_enrol boolean)
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
#variable_conflict use_column
begin
    delete from staff_sessions s
    where s.id_hash = p_id_hash and (s.expires_at <= now() or s.last_seen_at <= now() - p_idle);
    return query
    with touched as (
        update staff_sessions s set last_seen_at = now()
        where s.id_hash = p_id_hash
        returning s.staff_id)
    select a.id, a.email, a.role,
           a.role = 'admin' and a.totp_enabled_at is null and t.admins_need_2fa
    from touched x join staff_accounts a on a.id = x.staff_id
    join tenants t on t.id = a.tenant_id
    where a.active;
end
$$;

-- A session has ended (its row deleted): so do its live streams in every server process
-- (they listen for the SHA-256 of the stored hash, which names the session without
-- revealing it).
create function dentbook.announce_session_end(p_id_hash bytea)
    returns void
    language sql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select dentbook.announce('dentbook_sessions', json_build_object(
        't', dentbook.current_tenant(), 'k', encode(sha256(p_id_hash), 'hex'))::text)
$$;

-- Every session of the account ends, with its live streams. Returns how many ended.
create function dentbook.end_sessions(p_staff uuid)
    returns integer
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_hash bytea;
    v_count integer := 0;
begin
    for v_hash in delete from staff_sessions s where s.staff_id = p_staff returning s.id_hash loop
        perform dentbook.announce_session_end(v_hash);
        v_count := v_count + 1;
    end loop;
    return v_count;
end
$$;

-- Sign-out: the session ends, and so do its live streams.
create function dentbook.staff_session_end(p_id_hash bytea)
    returns boolean
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_staff uuid;
begin
    delete from staff_sessions where id_hash = p_id_hash returning staff_id into v_staff;
    if not found then
        return false;
    end if;
    perform dentbook.announce_session_end(p_id_hash);
    perform dentbook.audit_staff(v_staff, 'signout', 'this session');
    return true;
end
$$;

-- "Sign out everywhere": every session of the account holding this one ends, with its live
-- streams. Returns how many ended (0: this session was not valid).
create function dentbook.staff_sessions_end_all(p_id_hash bytea)
    returns integer
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_staff uuid;
    v_count integer;
begin
    select s.staff_id into v_staff from staff_sessions s where s.id_hash = p_id_hash;
    if v_staff is null then
        return 0;
    end if;
    v_count := dentbook.end_sessions(v_staff);
    delete from staff_challenges c where c.staff_id = v_staff;
    perform dentbook.audit_staff(v_staff, 'signout', format('all sessions (%s)', v_count));
    return v_count;
end
$$;

-- A sign-in attempt, counted and decided in one step BEFORE the password is checked:
-- refused (seconds to wait) while the account has p_max_pair failures from this client
-- address inside the window, p_max_account from anywhere, or the address p_max_ip on any
-- account; otherwise recorded as a failure at once and its id returned (a successful
-- sign-in deletes it). Locks per account and per address serialise concurrent attempts,
-- so thirty parallel guesses are thirty counted attempts, not thirty free ones. Throttling
-- per (account, address) first keeps a stranger who knows a staff e-mail from locking the
-- real person out from elsewhere; the account-wide ceiling is higher.
create function dentbook.login_attempt(
    p_email text, p_ip inet, p_window interval, p_max_pair integer, p_max_account integer,
    p_max_ip integer)
    returns table (attempt bigint, retry_after integer)
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_tenant uuid := dentbook.current_tenant();
    v_email text := lower(p_email);
    v_until timestamptz;
begin
    -- Always the account's lock before the address's: no two attempts wait in a cycle.
    perform pg_advisory_xact_lock(hashtextextended('login:' || v_tenant || ':' || v_email, 0));
    if p_ip is not null then
        perform pg_advisory_xact_lock(hashtextextended('login-ip:' || v_tenant || ':' || host(p_ip), 0));
    end if;
    delete from login_failures f where f.at <= now() - p_window;
    select max(b.until) into v_until
    from ((select f.at + p_window as until from login_failures f
           where f.email = v_email and f.client_ip is not distinct from p_ip
           order by f.at desc offset p_max_pair - 1 limit 1)
          union all
          (select f.at + p_window from login_failures f where f.email = v_email
           order by f.at desc offset p_max_account - 1 limit 1)
          union all
          (select f.at + p_window from login_failures f
           where p_ip is not null and f.client_ip = p_ip
           order by f.at desc offset p_max_ip - 1 limit 1)) b;
    if v_until is not null then
        return query select null::bigint, greatest(1, ceil(extract(epoch from v_until - now())))::integer;
        return;
    end if;
    return query
    insert into login_failures as f (tenant_id, email, client_ip) values (v_tenant, v_email, p_ip)
    returning f.id, null::integer;
end
$$;

-- A counted attempt that passed without starting a session (a code that turned a second
-- factor off): forgotten, like a successful sign-in's.
create function dentbook.login_attempt_passed(p_attempt bigint)
    returns void
    language sql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$ delete from login_failures where id = p_attempt $$;

grant execute on function dentbook.staff_credentials(text), dentbook.staff_set_hash(uuid, text),
    dentbook.staff_session_start(uuid, bytea, bytea, interval, interval, bigint, text),
    dentbook.staff_challenge_start(uuid, bytea, interval, bigint),
    dentbook.staff_challenge(bytea), dentbook.staff_second_factor(uuid),
    dentbook.staff_totp_used(uuid, bigint), dentbook.staff_recovery_used(uuid, text),
    dentbook.staff_totp_state(uuid), dentbook.staff_totp_begin(uuid, text),
    dentbook.staff_totp_confirm(uuid, bigint, text[]),
    dentbook.staff_totp_disable(uuid, bigint, text),
    dentbook.staff_session_touch(bytea, interval), dentbook.staff_session_end(bytea),
    dentbook.staff_sessions_end_all(bytea),
    dentbook.login_attempt(text, inet, interval, integer, integer, integer),
    dentbook.login_attempt_passed(bigint)
    to dentbook_service;

revoke execute on all functions in schema dentbook from public;
