"""claimflow operator: BenefitPlan custom resources become live adjudication plans."""
