// The tiers page's operations.
import { graphql } from '../../gql';

export const TierPolicyFieldsFragment = graphql(`
  fragment TierPolicyFields on TierPolicy {
    tier
    leaseDurationSeconds
    maxActiveLeases
    spendCapUsd
    requestsPerMinute
    updatedAt
  }
`);

/** The three policies, and how many users each one governs. */
export const TiersPageQuery = graphql(`
  query TiersPage {
    tierPolicies {
      ...TierPolicyFields
    }
    free: users(filter: { tier: FREE }, first: 0) {
      totalCount
    }
    pro: users(filter: { tier: PRO }, first: 0) {
      totalCount
    }
    enterprise: users(filter: { tier: ENTERPRISE }, first: 0) {
      totalCount
    }
  }
`);

export const UpdateTierPolicyMutation = graphql(`
  mutation UpdateTierPolicy($tier: Tier!, $input: TierPolicyInput!) {
    updateTierPolicy(tier: $tier, input: $input) {
      ...TierPolicyFields
    }
  }
`);
