-- Staff level: what a signed-in staff member's transaction may run besides reading its
-- clinic's tables under row level security. Re-applied whenever this file changes.

grant execute on function dentbook.longest_visit() to dentbook_staff;
grant execute on function dentbook.current_tenant() to dentbook_staff;

revoke execute on all functions in schema dentbook from public;
