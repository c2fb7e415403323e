"""SLAs of approvals, in one package.

* ``calendar``: working calendars and due-date arithmetic (pure standard library);
* ``rules``: which rule, hours and clock a stage gets, and its due and reminder instants (pure);
* ``check``: the set-based SLA check's statements (breaches, escalations, reminders);
* ``state``: the SLA state an approval records in ``metadata["sla"]`` when saved.

``approvals.services.sla_check_breaches`` runs the check; ``approvals.selectors`` loads policies.
"""
