"""The clinic's settings, for its admins: `/{slug}/staff/settings/…` (product.md §9)."""

from __future__ import annotations

from litestar import Router

from dentbook.web.settings import accounts, clinic, doctors, visit_types

ROUTER = Router(path="/staff/settings", route_handlers=[
    clinic.settings_index, clinic.policy_page, clinic.save_policy, clinic.save_retention,
    clinic.clinic_page, clinic.save_clinic,
    accounts.staff_page, accounts.invite, accounts.reinvite, accounts.change_role,
    accounts.deactivate, accounts.reactivate,
    doctors.doctors_page, doctors.add_doctor, doctors.doctor_page, doctors.save_doctor,
    doctors.save_hours, doctors.add_days_off, doctors.remove_day_off, doctors.new_feed,
    doctors.feed_off,
    visit_types.visit_types_page, visit_types.add_visit_type, visit_types.visit_type_page,
    visit_types.save_visit_type,
])
