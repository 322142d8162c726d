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
