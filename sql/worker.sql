-- Worker level: the in-process job runner claiming due work across clinics. Re-applied
-- whenever this file changes (functions dropped and re-created).
--
-- The only level that sees every clinic's rows, and only of `jobs` (its policy in rls.sql),
-- which hold ids, kinds and times, never personal data. A claimed job is then carried out
-- at the service level inside its own clinic. These functions run as the caller (not
-- SECURITY DEFINER), so that policy is what lets them see across clinics.

drop function if exists dentbook.claim_jobs, dentbook.claim_job, dentbook.finish_job,
    dentbook.retry_job, dentbook.next_job_at, dentbook.outbox_backlog cascade;

-- Claim up to p_limit due jobs for p_lease: rows another worker holds are skipped, not
-- waited for, so several processes never take the same job.
create function dentbook.claim_jobs(p_claim uuid, p_limit integer, p_lease interval)
    returns table (tenant_id uuid, id bigint, kind text, booking_id uuid, ref bigint,
                   attempts integer)
    language sql volatile set search_path = dentbook, pg_catalog, pg_temp
as $$
    update jobs j set claim = p_claim, locked_until = now() + p_lease, attempts = j.attempts + 1
    from (select x.tenant_id, x.id from jobs x
          where x.state = 'due' and x.due_at <= now()
            and (x.locked_until is null or x.locked_until <= now())
          order by x.due_at limit p_limit
          for update skip locked) c
    where j.tenant_id = c.tenant_id and j.id = c.id
    returning j.tenant_id, j.id, j.kind, j.booking_id, j.ref, j.attempts
$$;
grant execute on function dentbook.claim_jobs(uuid, integer, interval) to dentbook_worker;

-- Claim one job by id (the process that committed it runs it at once), if it is free.
create function dentbook.claim_job(p_tenant uuid, p_id bigint, p_claim uuid, p_lease interval)
    returns table (tenant_id uuid, id bigint, kind text, booking_id uuid, ref bigint,
                   attempts integer)
    language sql volatile set search_path = dentbook, pg_catalog, pg_temp
as $$
    update jobs j set claim = p_claim, locked_until = now() + p_lease, attempts = j.attempts + 1
    from (select x.tenant_id, x.id from jobs x
          where x.tenant_id = p_tenant and x.id = p_id and x.state = 'due'
            and (x.locked_until is null or x.locked_until <= now())
          for update skip locked) c
    where j.tenant_id = c.tenant_id and j.id = c.id
    returning j.tenant_id, j.id, j.kind, j.booking_id, j.ref, j.attempts
$$;
grant execute on function dentbook.claim_job(uuid, bigint, uuid, interval) to dentbook_worker;

-- Done, if the claim is still ours (a lease that ran out may have passed it on).
create function dentbook.finish_job(p_tenant uuid, p_id bigint, p_claim uuid)
    returns boolean
    language sql volatile set search_path = dentbook, pg_catalog, pg_temp
as $$
    with u as (
        update jobs set state = 'done', finished_at = now(), claim = null, locked_until = null,
            last_error = null
        where tenant_id = p_tenant and id = p_id and claim = p_claim returning 1)
    select exists (select from u)
$$;
grant execute on function dentbook.finish_job(uuid, bigint, uuid) to dentbook_worker;

-- Failed this time: due again after p_backoff, or given up (state 'failed', kept with its
-- last error for the staff audit) once it has had p_max_attempts or when p_give_up says it
-- can never succeed.
create function dentbook.retry_job(p_tenant uuid, p_id bigint, p_claim uuid, p_error text,
                                   p_backoff interval, p_give_up boolean, p_max_attempts integer)
    returns text
    language sql volatile set search_path = dentbook, pg_catalog, pg_temp
as $$
    update jobs set
        state = case when p_give_up or attempts >= p_max_attempts then 'failed' else 'due' end,
        due_at = now() + p_backoff, claim = null, locked_until = null,
        last_error = left(p_error, 2000),
        finished_at = case when p_give_up or attempts >= p_max_attempts then now() end
    where tenant_id = p_tenant and id = p_id and claim = p_claim
    returning state
$$;
grant execute on function dentbook.retry_job(uuid, bigint, uuid, text, interval, boolean, integer)
    to dentbook_worker;

-- When the next job falls due (or a lapsed claim can be taken again), for the worker's sleep.
create function dentbook.next_job_at()
    returns timestamptz
    language sql stable set search_path = dentbook, pg_catalog, pg_temp
as $$
    select min(greatest(due_at, coalesce(locked_until, due_at))) from jobs where state = 'due'
$$;
grant execute on function dentbook.next_job_at() to dentbook_worker;

-- The e-mail outbox as /metrics shows it: messages due now and not sent yet, and how many
-- seconds the oldest of them has waited (null when none). Reminders due later are not a
-- backlog. Ids and times only, like everything at this level.
create function dentbook.outbox_backlog(out depth integer, out oldest_seconds double precision)
    language sql stable set search_path = dentbook, pg_catalog, pg_temp
as $$
    select count(*)::integer, extract(epoch from now() - min(due_at))::double precision
    from jobs where kind = 'email' and state = 'due' and due_at <= now()
$$;
grant execute on function dentbook.outbox_backlog() to dentbook_worker;

revoke execute on all functions in schema dentbook from public;
