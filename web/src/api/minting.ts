// Operations on minted keys shared by the key, lease and overview pages: the provider job rows,
// the retry of a job that failed for good, and the count of such jobs for the pool-wide alert.
import { graphql } from '../gql';

export const ProviderJobRowFragment = graphql(`
  fragment ProviderJobRow on ProviderJob {
    id
    kind
    status
    attempts
    lastError
    runAfter
    createdAt
    updatedAt
    leaseId
    keyId
  }
`);

export const MintedKeyFieldsFragment = graphql(`
  fragment MintedKeyFields on MintedKey {
    status
    name
    maskedKey
    providerKeyId
    limitUsd
    expiresAt
    providerCreatedAt
    deletedAt
    providerUsageUsd
    providerCheckedAt
    providerError
    driftUsd
  }
`);

/**
 * The jobs of a minting key or of a lease, newest first. A query of its own, not part of the key's or
 * the lease's page query: asked again on its own when jobs move, and the pages stay within the
 * server's query cost limit.
 */
export const ProviderJobsQuery = graphql(`
  query ProviderJobs($keyId: ID, $leaseId: ID, $first: Int, $after: String, $last: Int, $before: String) {
    providerJobs(keyId: $keyId, leaseId: $leaseId, first: $first, after: $after, last: $last, before: $before) {
      totalCount
      totalCountIsEstimate
      pageInfo {
        hasNextPage
        hasPreviousPage
        startCursor
        endCursor
      }
      edges {
        node {
          ...ProviderJobRow
        }
      }
    }
  }
`);

export const RetryProviderJobMutation = graphql(`
  mutation RetryProviderJob($id: ID!) {
    retryProviderJob(id: $id) {
      ...ProviderJobRow
    }
  }
`);

/** Jobs that failed for good anywhere in the pool: the overview's and the keys page's alert. */
export const FailingProviderJobsQuery = graphql(`
  query FailingProviderJobs {
    providerJobs(status: IRRECOVERABLE, first: 5) {
      totalCount
      totalCountIsEstimate
      edges {
        node {
          ...ProviderJobRow
          key {
            id
            label
          }
        }
      }
    }
  }
`);
