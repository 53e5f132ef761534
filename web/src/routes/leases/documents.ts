// The lease pages' operations. Every mutation answers with the lease's row, so the cache puts the
// change in place everywhere the lease is shown.
import { graphql } from '../../gql';

export const RevokeLeaseMutation = graphql(`
  mutation RevokeLease($id: ID!, $reason: String) {
    revokeLease(id: $id, reason: $reason) {
      ...LeaseRow
    }
  }
`);

export const ExtendLeaseMutation = graphql(`
  mutation ExtendLease($id: ID!, $bySeconds: Int!, $reactivate: Boolean) {
    extendLease(id: $id, bySeconds: $bySeconds, reactivate: $reactivate) {
      ...LeaseRow
    }
  }
`);

export const UpdateLeaseCapMutation = graphql(`
  mutation UpdateLeaseCap($id: ID!, $spendCapUsd: Decimal!) {
    updateLeaseCap(id: $id, spendCapUsd: $spendCapUsd) {
      ...LeaseRow
    }
  }
`);

export const LeaseDetailQuery = graphql(`
  query LeaseDetail($id: ID!, $after: String, $before: String, $first: Int, $last: Int) {
    lease(id: $id) {
      ...LeaseRow
      key {
        id
        label
        provider
        maskedKey
        status
      }
      events(first: 100) {
        ...EventItem
      }
      mintedKey {
        ...MintedKeyFields
      }
    }

    usageRecords(leaseId: $id, first: $first, after: $after, last: $last, before: $before) {
      totalCount
      totalCountIsEstimate
      pageInfo {
        ...Paging
      }
      edges {
        node {
          id
          at
          requestId
          providerRequestId
          model
          promptTokens
          completionTokens
          costUsd
          costSource
        }
      }
    }
  }
`);
