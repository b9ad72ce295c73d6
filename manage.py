#!/usr/bin/env python
"""Django's command-line utility.

Without `DJANGO_SETTINGS_MODULE`, commands run with the production settings unless `DEBUG`
is true in the environment or in `.env` (see config/environment.py and README "Configuration").
"""

import os
import sys


def main() -> None:
    defaulted = not os.environ.get("DJANGO_SETTINGS_MODULE")
    if defaulted:
        from config.environment import default_settings_module

        os.environ["DJANGO_SETTINGS_MODULE"] = default_settings_module()
    module = os.environ["DJANGO_SETTINGS_MODULE"]

    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    from config.environment import InvalidSetting

    try:
        # Load the settings now, so a missing secret or a bad value (WEBHOOKS_TIMEOUT=abc) is
        # one line naming the variable instead of a traceback.
        _ = settings.INSTALLED_APPS
    except ImproperlyConfigured as exc:
        missing_secret = defaulted and not isinstance(exc, InvalidSetting)
        hint = " For development, set DEBUG=true (in the environment or .env)." if missing_secret else ""
        sys.exit(f"Error: {module}: {exc}{hint}")
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
