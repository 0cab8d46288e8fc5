"""Slow, independent twins of the numba kernels (SciPy, mpmath), used by the tests and the
benchmarks only: ``pk_linear`` (closed-form linear PK), ``pk_ode`` (ODE PK), ``crm`` (CRM
posterior by adaptive quadrature)."""
