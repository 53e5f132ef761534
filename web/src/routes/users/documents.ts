// The users page's operations.
import { graphql } from '../../gql';

export const UserRowFragment = graphql(`
  fragment UserRow on User {
    id
    email
    role
    tier
    activeLeaseCount
    spendThisMonthUsd
    createdAt
  }
`);

/** One page of users, and the tier policies a tier change would put them under. */
export const UsersPageQuery = graphql(`
  query UsersPage($first: Int, $after: String, $last: Int, $before: String, $filter: UserFilter) {
    users(first: $first, after: $after, last: $last, before: $before, filter: $filter) {
      totalCount
      totalCountIsEstimate
      pageInfo {
        ...Paging
      }
      edges {
        node {
          ...UserRow
        }
      }
    }
    tierPolicies {
      tier
      leaseDurationSeconds
      maxActiveLeases
      spendCapUsd
    }
  }
`);

export const SetUserTierMutation = graphql(`
  mutation SetUserTier($userId: ID!, $tier: Tier!) {
    setUserTier(userId: $userId, tier: $tier) {
      ...UserRow
    }
  }
`);
