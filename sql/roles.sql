-- Roles and database-level grants. Run by `dentbook migrate` as the privileged user,
-- before anything else, every time it changes. Idempotent.
--
--   dentbook_owner    owns every object; never logs in.
--   dentbook_app      the login role the server runs as: owns nothing, not superuser,
--                     no BYPASSRLS, and NOINHERIT, so it can do nothing until a
--                     transaction takes one of the three trust levels below with
--                     set_config('role', …, true).
--   dentbook_anon     patients: execute the public availability functions only.
--   dentbook_staff    signed-in staff: SELECT under row level security, nothing else.
--   dentbook_service  the server acting for itself: the booking/payment functions.
--   dentbook_worker   the in-process job runner: claims due jobs across clinics.

do $$
declare
    r text;
begin
    foreach r in array array['dentbook_owner', 'dentbook_anon', 'dentbook_staff', 'dentbook_service',
                             'dentbook_worker'] loop
        if not exists (select from pg_roles where rolname = r) then
            execute format('create role %I nologin', r);
        end if;
    end loop;
    if not exists (select from pg_roles where rolname = 'dentbook_app') then
        create role dentbook_app login noinherit;
    end if;
    -- Only touch shared catalogues when needed: migrations of other databases on the
    -- same server may run at the same time (advisory locks are per database).
    if exists (select from pg_roles where rolname = 'dentbook_app' and (rolsuper or rolcreatedb
               or rolcreaterole or rolbypassrls or rolinherit)) then
        alter role dentbook_app nosuperuser nocreatedb nocreaterole nobypassrls noinherit;
    end if;
    foreach r in array array['dentbook_anon', 'dentbook_staff', 'dentbook_service', 'dentbook_worker'] loop
        if not exists (select from pg_auth_members m join pg_roles g on g.oid = m.roleid
                       join pg_roles u on u.oid = m.member
                       where g.rolname = r and u.rolname = 'dentbook_app') then
            execute format('grant %I to dentbook_app', r);
        end if;
    end loop;
    -- The migrating user must be able to SET ROLE dentbook_owner (PostgreSQL 16+ no
    -- longer grants that to a role's creator implicitly).
    if not pg_has_role(current_user, 'dentbook_owner', 'member') then
        execute format('grant dentbook_owner to %I', current_user);
    end if;
    execute format('grant create, connect on database %I to dentbook_owner', current_database());
    execute format('grant connect on database %I to dentbook_app', current_database());
    execute format('revoke create on database %I from public', current_database());
    -- Only our roles may connect (and so LISTEN or NOTIFY on our channels) or make
    -- temporary tables; the migrating user keeps its own rights.
    execute format('revoke connect, temporary on database %I from public', current_database());
end
$$;

create extension if not exists btree_gist;
