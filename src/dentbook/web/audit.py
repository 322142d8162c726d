"""The audit log page and its CSV export (§9), for every signed-in role.

The page names no patient (visits by reference and id), so reading it is not itself a read
of patients' data. The export streams the whole filtered log with Litestar's `Stream`, in
batches read after the handler has returned (each in its own staff transaction).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Router, get
from litestar.di import NamedDependency
from litestar.response import Stream, Template

from dentbook import agenda, audit
from dentbook.db import Conn
from dentbook.forms import parse
from dentbook.staff import StaffUser
from dentbook.tenancy import Clinic, ClinicDb
from dentbook.web.guards import viewer
from dentbook.web.messages import N_
from dentbook.web.render import PRIVATE, page

ACTIONS = {
    "created": N_("Booked"), "block": N_("Time blocked"), "status": N_("Status changed"),
    "moved": N_("Moved"), "attendance": N_("Attendance"), "read": N_("Read patients' data"),
    "link.revoked": N_("Patient's link revoked"),
    "signin": N_("Signed in"), "signout": N_("Signed out"),
    "second_factor": N_("Two-factor sign-in"), "staff.invited": N_("Staff member invited"),
    "staff.role": N_("Role changed"), "staff.active": N_("Account turned on or off"),
    "staff.password_set": N_("Password set"), "doctor.added": N_("Doctor added"),
    "doctor.changed": N_("Doctor changed"), "doctor.hours": N_("Working hours changed"),
    "doctor.days_off": N_("Day off added"), "doctor.day_on": N_("Day off removed"),
    "doctor.feed": N_("Calendar feed changed"), "visit_type.added": N_("Visit type added"),
    "visit_type.changed": N_("Visit type changed"),
    "clinic.policy": N_("Cancellation policy or reminders changed"),
    "clinic.retention": N_("How long patients' data is kept changed"),
    "clinic.details": N_("Clinic details changed"), "patient_search": N_("Patients searched"),
    "patient_export": N_("Patient's data exported"), "patient_erase": N_("Patient's data erased"),
    "retention": N_("Retention run"), "privacy_notice": N_("Privacy notice changed"),
    "settings": N_("Security settings changed"), "job.failed": N_("Given up"),
}
ACTORS = {"patient": N_("Patient"), "stripe": N_("Stripe"), "system": N_("System"),
          "staff": N_("Staff")}
# What the SQL functions record as the reason of a change.
DETAILS = {
    "held": N_("held online"), "hold lapsed": N_("hold lapsed"),
    "booked by phone": N_("booked by phone"), "time blocked": N_("time blocked"),
    "block removed": N_("block removed"), "moved by the clinic": N_("moved by the clinic"),
    "cancelled by the clinic": N_("cancelled by the clinic"),
    "cancelled by the patient": N_("cancelled by the patient"),
    "moved by the patient": N_("moved by the patient"),
    "marked arrived": N_("marked arrived"), "marked no-show": N_("marked no-show"),
    "marked completed": N_("marked completed"),
    "password": N_("password"), "password and authenticator code": N_("password and authenticator code"),
    "password and recovery code": N_("password and recovery code"),
    "turned on": N_("turned on"), "turned off": N_("turned off"),
    "this session": N_("this session"), "patients page": N_("patients page"),
    "nothing found": N_("nothing found"), "data export": N_("data export"),
    "erasure refused": N_("erasure refused"), "erased": N_("erased"),
    "cancelled: the patient asked for their data to be erased":
        N_("cancelled: the patient asked for their data to be erased"),
    "retention run": N_("retention run"), "new version": N_("new version"),
    "admins must use two-factor sign-in": N_("admins must use two-factor sign-in"),
    # Jobs given up (sql/triggers.sql: audit_failed_job).
    "refund": N_("the refund could not be made: check the payment in Stripe"),
    "retention": N_("the retention run failed"),
    "email: confirmation": N_("the confirmation e-mail could not be sent"),
    "email: processing": N_("the payment-processing e-mail could not be sent"),
    "email: payment_failed": N_("the payment-failed e-mail could not be sent"),
    "email: reminder": N_("the reminder could not be sent"),
    "email: cancellation": N_("the cancellation e-mail could not be sent"),
    "email: reschedule": N_("the new-time e-mail could not be sent"),
    "email: refund": N_("the refund e-mail could not be sent"),
}
FIELDS = {"status": N_("Status"), "start": N_("Start"), "end": N_("End"),
          "doctor": N_("Doctor"), "attendance": N_("Attendance")}


@get("/audit", name="staff_audit", guards=[viewer])
async def audit_page(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                     clinic_db: NamedDependency[ClinicDb], staff_user: NamedDependency[StaffUser],
                     staff_tx: NamedDependency[Conn],
                     locale: NamedDependency[str]) -> Template | Stream:
    filters = parse(audit.AuditFilters, request.query_params)
    if filters.format == "csv":
        return _export(clinic, clinic_db, staff_user, filters)
    response = page(request, "pages/staff_audit.html", locale, clinic=clinic, staff=staff_user,
                    filters=filters, page_=await audit.entries(staff_tx, filters),
                    accounts=await audit.accounts(staff_tx),
                    doctors={str(d.id): d.name for d in await agenda.list_doctors(staff_tx)},
                    actions=ACTIONS, actors=ACTORS, details=DETAILS, field_names=FIELDS)
    response.headers.update(PRIVATE)
    return response


@get("/audit.csv", name="staff_audit_csv", guards=[viewer])
async def audit_csv(request: Request[Any, Any, Any], clinic: NamedDependency[Clinic],
                    clinic_db: NamedDependency[ClinicDb],
                    staff_user: NamedDependency[StaffUser]) -> Stream:
    return _export(clinic, clinic_db, staff_user, parse(audit.AuditFilters, request.query_params))


def _export(clinic: Clinic, clinic_db: ClinicDb, user: StaffUser,
            filters: audit.AuditFilters) -> Stream:
    return Stream(audit.csv_lines(clinic_db, user.id, filters),
                  media_type="text/csv; charset=utf-8",
                  headers={**PRIVATE, "Content-Disposition":
                           f'attachment; filename="audit-{clinic.slug}.csv"'})


ROUTER = Router(path="/staff", route_handlers=[audit_page, audit_csv])
