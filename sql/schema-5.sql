-- dentbook schema, version 5: what the front desk writes into the calendar.

-- A block is time taken from a doctor's calendar with no patient and no visit type; a
-- visit still always has its type.
alter table dentbook.bookings
    alter column visit_type_id drop not null,
    add constraint bookings_visit_type_check check (kind = 'block' or visit_type_id is not null),
    -- Every read of a doctor's calendar finds what overlaps an interval by its start, looking
    -- back at most longest_visit() (schema-2): a longer block would be missed by those reads
    -- (though still refused by the exclusion constraint), so no row may be longer.
    add constraint bookings_length_check check (upper(during) - lower(during)
                                                <= dentbook.longest_visit());

-- No-shows are counted per patient, by e-mail or by phone (a phone booking may have no
-- e-mail). A phone number is compared by its last nine digits, so "+48 600 100 200" and
-- "600-100-200" are one patient (nine digits is a Polish number without its prefix).
create function dentbook.phone_key(p_phone text) returns text
    language sql immutable parallel safe strict
as $$
    select case when length(d) < 6 then null else right(d, 9) end
    from (select regexp_replace(p_phone, '[^0-9]', '', 'g') as d) x
$$;

alter table dentbook.bookings
    add column phone_key text generated always as (dentbook.phone_key(patient_phone)) stored;
create index bookings_no_shows_by_email on dentbook.bookings (tenant_id, email_key)
    where attendance = 'no_show';
create index bookings_no_shows_by_phone on dentbook.bookings (tenant_id, phone_key)
    where attendance = 'no_show';

