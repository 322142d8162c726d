-- Staff sign-in: credentials, server-side sessions, throttling of failed attempts.
-- Re-applied whenever this file changes (functions are dropped and re-created).
--
-- Same rules as functions.sql: SECURITY DEFINER with a fixed search_path, and forced
-- row level security still applies, so each function sees only the clinic the calling
-- transaction set in app.tenant_id: another clinic's account or session cookie simply
-- does not exist here. Only the service level may call them; the staff level stays
-- read-only on clinic data and never sees password hashes or sessions.

drop function if exists dentbook.staff_credentials, dentbook.staff_set_hash,
    dentbook.staff_session_start, dentbook.staff_session_touch, dentbook.staff_session_end,
    dentbook.record_login_failure, dentbook.login_retry_after cascade;

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

-- A successful sign-in: a new session (only the SHA-256 of its id is stored), the
-- browser's previous session ends, this clinic's lapsed sessions are swept, and the
-- account's failed attempts are forgotten. Returns the absolute expiry.
create function dentbook.staff_session_start(
    p_staff uuid, p_id_hash bytea, p_old_hash bytea, p_idle interval, p_absolute interval)
    returns timestamptz
    language plpgsql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_expires timestamptz := now() + p_absolute;
begin
    delete from staff_sessions s
    where s.id_hash = p_old_hash or s.expires_at <= now() or s.last_seen_at <= now() - p_idle;
    delete from login_failures f
    where f.email = (select a.email from staff_accounts a where a.id = p_staff);
    insert into staff_sessions (tenant_id, id_hash, staff_id, expires_at)
    values (dentbook.current_tenant(), p_id_hash, p_staff, v_expires);
    return v_expires;
end
$$;

-- A session in use: valid while neither its idle nor its absolute limit has passed, and
-- using it restarts the idle limit. A lapsed session is deleted. Returns its account.
create function dentbook.staff_session_touch(p_id_hash bytea, p_idle interval)
    returns table (staff_id uuid, email text)
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
    select a.id, a.email from touched t join staff_accounts a on a.id = t.staff_id;
end
$$;

create function dentbook.staff_session_end(p_id_hash bytea)
    returns boolean
    language sql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    with d as (delete from staff_sessions where id_hash = p_id_hash returning 1)
    select exists (select from d)
$$;

-- A failed sign-in, unknown e-mail and wrong password alike. Failures older than the
-- throttling window no longer count anywhere, so they are swept here.
create function dentbook.record_login_failure(p_email text, p_ip inet, p_window interval)
    returns void
    language sql volatile security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    delete from login_failures where at <= now() - p_window;
    insert into login_failures (tenant_id, email, client_ip)
    values (dentbook.current_tenant(), lower(p_email), p_ip);
$$;

-- Seconds until sign-in may be tried again, or null when it may be tried now. Blocked
-- while the account (e-mail at this clinic) has p_max_email failures inside the window,
-- or the client address p_max_ip: until the latest failures leave the window.
create function dentbook.login_retry_after(
    p_email text, p_ip inet, p_window interval, p_max_email integer, p_max_ip integer)
    returns integer
    language sql stable security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
    select ceil(extract(epoch from max(until) - now()))::integer
    from ((select at + p_window as until from login_failures
           where email = lower(p_email) and at > now() - p_window
           order by at desc offset p_max_email - 1 limit 1)
          union all
          (select at + p_window from login_failures
           where p_ip is not null and client_ip = p_ip and at > now() - p_window
           order by at desc offset p_max_ip - 1 limit 1)) blocking
$$;

revoke all on function dentbook.staff_credentials(text), dentbook.staff_set_hash(uuid, text),
    dentbook.staff_session_start(uuid, bytea, bytea, interval, interval),
    dentbook.staff_session_touch(bytea, interval), dentbook.staff_session_end(bytea),
    dentbook.record_login_failure(text, inet, interval),
    dentbook.login_retry_after(text, inet, interval, integer, integer)
    from public;
grant execute on function dentbook.staff_credentials(text), dentbook.staff_set_hash(uuid, text),
    dentbook.staff_session_start(uuid, bytea, bytea, interval, interval),
    dentbook.staff_session_touch(bytea, interval), dentbook.staff_session_end(bytea),
    dentbook.record_login_failure(text, inet, interval),
    dentbook.login_retry_after(text, inet, interval, integer, integer)
    to dentbook_service;
