"""E-mail to patients: SMTP delivery, the local mail sink and its inbox, calendar files,
and composing the messages themselves."""
