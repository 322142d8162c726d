-- Service level, staff sign-in: credentials, server-side sessions, throttling of failed
-- attempts. Re-applied whenever this file changes (functions are dropped and re-created).
--
-- SECURITY DEFINER with a fixed search_path, and forced row level security still
-- applies, so each function sees only the clinic the calling transaction set in
-- app.tenant_id: another clinic's account or session cookie simply does not exist here.
-- Only the service level may call them; the staff level stays read-only on clinic data
-- and never sees password hashes or sessions.

drop function if exists dentbook.staff_credentials, dentbook.staff_set_hash,
    dentbook.staff_session_start, dentbook.staff_session_touch, dentbook.staff_session_end,
    dentbook.record_login_failure, dentbook.login_retry_after, dentbook.login_attempt cascade;

-- The account behind an e-mail at this clinic, with its password hash.
create function dentbook.staff_credentials(p_email text)
    returns table (id uuid, password_hash text)
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$ select id, password_hash from staff_accounts where email = lower(p_email) $$;

-- Store a password re-hashed at sign-in because the hash used older argon2 parameters.
create function dentbook.staff_set_hash(p_staff uuid, p_hash text)
    returns boolean
    language sql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    with u as (update staff_accounts set password_hash = p_hash where id = p_staff returning 1)
    select exists (select from u)
$$;

-- A successful sign-in (attempt p_attempt of login_attempt): a new session (only the
-- SHA-256 of its id is stored), the browser's previous session ends, this clinic's lapsed
-- sessions are swept, and the account's failures from this client address (this attempt
-- included) are forgotten; failures from elsewhere still count against their address.
-- Returns the absolute expiry.
create function dentbook.staff_session_start(
    p_staff uuid, p_id_hash bytea, p_old_hash bytea, p_idle interval, p_absolute interval,
    p_attempt bigint)
    returns timestamptz
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_expires timestamptz := now() + p_absolute;
begin
    delete from staff_sessions s
    where s.id_hash = p_old_hash or s.expires_at <= now() or s.last_seen_at <= now() - p_idle;
    delete from login_failures f
    where f.email = (select a.email from staff_accounts a where a.id = p_staff)
      and f.client_ip is not distinct from (select x.client_ip from login_failures x
                                            where x.id = p_attempt);
    insert into staff_sessions (tenant_id, id_hash, staff_id, expires_at)
    values (dentbook.current_tenant(), p_id_hash, p_staff, v_expires);
    return v_expires;
end
$$;

-- A session in use: valid while neither its idle nor its absolute limit has passed, and
-- using it restarts the idle limit. A lapsed session is deleted. Returns its account.
create function dentbook.staff_session_touch(p_id_hash bytea, p_idle interval)
    returns table (staff_id uuid, email text, role text)
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
    select a.id, a.email, a.role from touched t join staff_accounts a on a.id = t.staff_id;
end
$$;

-- Sign-out: the session ends, and so do its live streams in every server process (they
-- listen for the SHA-256 of the stored hash, which names the session without revealing it).
create function dentbook.staff_session_end(p_id_hash bytea)
    returns boolean
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
begin
    delete from staff_sessions where id_hash = p_id_hash;
    if not found then
        return false;
    end if;
    perform dentbook.announce('dentbook_sessions', json_build_object(
        't', dentbook.current_tenant(), 'k', encode(sha256(p_id_hash), 'hex'))::text);
    return true;
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

grant execute on function dentbook.staff_credentials(text), dentbook.staff_set_hash(uuid, text),
    dentbook.staff_session_start(uuid, bytea, bytea, interval, interval, bigint),
    dentbook.staff_session_touch(bytea, interval), dentbook.staff_session_end(bytea),
    dentbook.login_attempt(text, inet, interval, integer, integer, integer)
    to dentbook_service;

revoke execute on all functions in schema dentbook from public;
