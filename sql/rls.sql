-- Row level security: enabled and FORCED on every table of the dentbook schema, so
-- even the owner (and every SECURITY DEFINER function it owns) only sees the clinic
-- named by the transaction's app.tenant_id. Re-applied whenever this file changes.

create or replace function dentbook.current_tenant() returns uuid
    language sql stable parallel safe
    set search_path = pg_catalog
as $$ select nullif(current_setting('app.tenant_id', true), '')::uuid $$;

do $$
declare
    t text;
begin
    for t in select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where n.nspname = 'dentbook' and c.relkind in ('r', 'p') loop
        execute format('alter table dentbook.%I enable row level security', t);
        execute format('alter table dentbook.%I force row level security', t);
        execute format('drop policy if exists tenant_isolation on dentbook.%I', t);
        if t = 'tenants' then
            execute 'create policy tenant_isolation on dentbook.tenants
                     using (id = dentbook.current_tenant())
                     with check (id = dentbook.current_tenant())';
        else
            execute format('create policy tenant_isolation on dentbook.%I
                            using (tenant_id = dentbook.current_tenant())
                            with check (tenant_id = dentbook.current_tenant())', t);
        end if;
    end loop;
end
$$;

-- The clinic directory (slug, name, time zone: nothing private) is public, so the
-- owner's functions may list every clinic; no other table has such a policy.
drop policy if exists clinic_directory on dentbook.tenants;
create policy clinic_directory on dentbook.tenants for select to dentbook_owner using (true);

-- The job runner claims due jobs of every clinic; jobs carry ids, kinds and times only.
drop policy if exists worker_claims on dentbook.jobs;
create policy worker_claims on dentbook.jobs to dentbook_worker using (true) with check (true);

revoke all on schema dentbook from public;
grant usage on schema dentbook to dentbook_anon, dentbook_staff, dentbook_service, dentbook_worker;
-- Functions are executable by the levels their files grant, never by everyone.
alter default privileges for role dentbook_owner in schema dentbook
    revoke execute on functions from public;

revoke all on all tables in schema dentbook
    from public, dentbook_anon, dentbook_staff, dentbook_service, dentbook_worker;
revoke all on all sequences in schema dentbook from public;
grant select on dentbook.tenants, dentbook.doctors, dentbook.visit_types, dentbook.working_hours,
    dentbook.days_off, dentbook.bookings, dentbook.audit_log, dentbook.refunds,
    dentbook.messages, dentbook.visit_links, dentbook.privacy_notices
    to dentbook_staff;
grant select, update on dentbook.jobs to dentbook_worker;
