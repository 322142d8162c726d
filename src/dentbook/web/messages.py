"""Messages shown for failures, keyed by the code in `data-error` / `data-field-error`."""

from __future__ import annotations


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated when rendered."""
    return message


MESSAGES = {
    "invalid": N_("Something in this request is not valid."),
    "invalid_week": N_("That week is not a valid date (use YYYY-MM-DD)."),
    "invalid_start": N_("That start time is not valid."),
    "forbidden": N_("You are not allowed to do that."),
    "csrf": N_("This form has expired. Reload the page and try again."),
    "form_expired": N_("This form had expired, so nothing was sent. Your details are still "
                       "here: please check them and send the form again."),
    "not_found": N_("We could not find that page, clinic, doctor or visit."),
    "visit_link": N_("This link does not work: it may be mistyped, or it has expired. Please "
                     "contact the clinic about your visit."),
    "not_cancellable": N_("This visit cannot be cancelled any more: it was already cancelled, "
                          "or it has begun. Please contact the clinic."),
    "not_movable": N_("This visit can no longer be moved here: the time for changes has "
                      "passed, or the visit changed meanwhile. Please contact the clinic."),
    "method": N_("This address does not accept that kind of request."),
    "too_large": N_("That request is too large."),
    "too_many_requests": N_("Too many attempts. Please wait a moment and try again."),
    "unavailable": N_("The service is briefly unavailable. Please try again in a moment."),
    "internal": N_("Something went wrong on our side. Nothing was charged."),
    "slot_taken": N_("This slot was just taken by someone else. Please choose another time."),
    "slot_not_offered": N_("This time cannot be booked. Please choose one of the free times."),
    "too_many_holds": N_("You already hold too many unpaid bookings. Finish paying for one, or "
                         "wait until it expires, before holding another."),
    "payment_unavailable": N_("We could not open the payment page, so the time was released. "
                              "Please try again in a moment."),
    "not_resumable": N_("This payment can no longer be continued from here. If the time is "
                        "still free, please book it again."),
    "invalid_fields": N_("Please correct the marked fields."),
    "required": N_("Please fill this in."),
    "invalid_name": N_("Please enter your name (up to 200 characters)."),
    "invalid_email": N_("Please enter a valid e-mail address."),
    "invalid_phone": N_("Please enter a valid phone number, or leave it empty."),
    "invalid_doctor_id": N_("Please choose a doctor."),
    "invalid_visit_type_id": N_("Please choose a visit type."),
    "login_failed": N_("The e-mail address or the password is not right."),
    "login_throttled": N_("Too many failed sign-in attempts. Please wait a few minutes and try "
                          "again."),
    "invalid_day": N_("That day is not a valid date (use YYYY-MM-DD)."),
    "invalid_doctor": N_("That doctor does not work at this clinic."),
    "invalid_date": N_("That day is not a valid date (use YYYY-MM-DD)."),
    "invalid_view": N_("That view does not exist (day, week or list)."),
    "invalid_page": N_("That page number is not valid."),
    "invalid_show": N_("Something in this request is not valid."),
    # The front desk.
    "invalid_end": N_("The end must be after the start, and in the future."),
    "invalid_reason": N_("Please give a reason (up to 200 characters; 500 for a cancellation)."),
    "invalid_note": N_("The note can have up to 500 characters."),
    "invalid_state": N_("Please choose arrived, no-show or completed."),
    "invalid_locale": N_("Please choose Polish or English."),
    "invalid_phone_required": N_("Please enter the patient's phone number."),
    "invalid_booking": N_("That is not a visit's id."),
    "invalid_staff": N_("Please choose an account."),
    "invalid_format": N_("Something in this request is not valid."),
    "desk_not_offered": N_("This is not a start time the clinic offers for this doctor: outside "
                           "the working hours, on a day off, off the grid of start times, or "
                           "already past."),
    "wrong_state": N_("This can no longer be done: the visit was cancelled, has started or "
                      "ended, or the patient has come (or the block was removed already)."),
    "too_early": N_("Attendance can be marked from 30 minutes before the visit."),
    "same_time": N_("The visit is already at that time with that doctor."),
    "block_too_long": N_("A block can last at most 8 hours. For whole days off, ask an admin."),
    "last_admin": N_("The clinic must keep at least one active admin who can sign in. Make "
                     "someone else an admin first."),
    "account_exists": N_("This e-mail address already has an account at this clinic."),
    "invalid_role": N_("Please choose a role."),
    "invalid_password": N_("Please choose a password of at least 10 characters."),
    "invalid_password_again": N_("Please type the password again."),
    "password_mismatch": N_("The two passwords are not the same."),
    "invite_expired": N_("This invitation has expired. Please ask the clinic's admin for a new "
                         "link."),
    "invalid_doctor_name": N_("Please enter the doctor's name (up to 200 characters)."),
    "doctor_exists": N_("This clinic already has a doctor with this name."),
    "invalid_hours": N_("Write the hours as 09:00-13:00, several ranges separated by commas."),
    # hours_1 (Monday) … hours_7: one field per weekday, one message.
    **dict.fromkeys((f"invalid_hours_{d}" for d in range(1, 8)),
                    N_("Write the hours as 09:00-13:00, several ranges separated by commas.")),
    "hours_order": N_("Each range must end after it starts."),
    "hours_overlap": N_("These ranges overlap."),
    "invalid_until": N_("The last day must be the first day or later, at most a year later."),
    "invalid_name_pl": N_("Please enter the Polish name (up to 200 characters)."),
    "invalid_name_en": N_("Please enter the English name (up to 200 characters)."),
    "visit_type_exists": N_("There already is a visit type with this English name."),
    "invalid_duration_minutes": N_("Please enter a length from 5 to 480 minutes."),
    "invalid_deposit": N_("Please enter a deposit from 2.00 to 100000.00 (e.g. 50 or 50.00)."),
    "invalid_active": N_("Something in this request is not valid."),
    "invalid_cancel_window_hours": N_("Please enter a whole number of hours from 0 to 720."),
    "invalid_late_refund_percent": N_("Please enter a whole percentage from 0 to 100."),
    "invalid_retention_years": N_("Please enter a whole number of years from 1 to 30."),
    "invalid_unpaid_erasure_days": N_("Please enter a whole number of days from 1 to 90."),
    "invalid_retention": N_("Please enter periods within the limits shown."),
    "invalid_reminder_hours": N_("Please enter up to five different whole numbers of hours from "
                                 "1 to 720, separated by commas (e.g. 48, 2), or nothing for no "
                                 "reminders."),
    "invalid_clinic_name": N_("Please enter the clinic's name (up to 200 characters)."),
    "invalid_address": N_("Please enter the address (up to 300 characters)."),
    "invalid_time_zone": N_("Please choose a time zone from the list (e.g. Europe/Warsaw)."),
    "invalid_default_locale": N_("Please choose a language."),
    "wrong_code": N_("That code is not right, or it was already used. Enter the code your app "
                     "shows now, or an unused recovery code."),
    "challenge_expired": N_("The time to enter your code ran out. Please sign in again."),
    "nothing_found": N_("Nothing found: this clinic holds no bookings for that e-mail address or "
                        "phone number. Nothing was changed."),
    "visit_in_progress": N_("One of this person's visits is in progress right now. Erase their "
                            "data once it has ended."),
    "payment_in_progress": N_("A payment of this person's is under way (a booking waiting for its "
                              "deposit). Erase their data once it has completed or lapsed."),
    "refund_pending": N_("A refund to this person is still to be made. Erase their data once it "
                         "has gone through."),
    "patient_query_required": N_("Please enter an e-mail address or a phone number."),
    "erase_confirm_required": N_("Please confirm that you have checked who is asking."),
    "invalid_notice": N_("Please enter the notice's text (up to 20,000 characters)."),
}
