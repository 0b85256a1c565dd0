"""Platform: the performance dashboard (``dashboard``, ``assets``, ``cli``) and production deployment modes (``production``)."""
