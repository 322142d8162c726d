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
}
