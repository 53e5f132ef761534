-- CreateEnum
CREATE TYPE "Role" AS ENUM ('ADMIN', 'USER', 'WORKER', 'OBSERVER');

-- CreateEnum
CREATE TYPE "Tier" AS ENUM ('FREE', 'PRO', 'ENTERPRISE');

-- CreateEnum
CREATE TYPE "Provider" AS ENUM ('OPENROUTER', 'VENICE', 'OPENAI_COMPATIBLE');

-- CreateEnum
CREATE TYPE "Framework" AS ENUM ('OPENCLAW', 'ELIZA', 'GENERIC');

-- CreateEnum
CREATE TYPE "KeyStatus" AS ENUM ('ACTIVE', 'DISABLED');

-- CreateEnum
CREATE TYPE "LeaseStatus" AS ENUM ('ACTIVE', 'EXPIRED', 'REVOKED', 'RELEASED', 'SUSPENDED');

-- CreateEnum
CREATE TYPE "LeaseEventType" AS ENUM ('GRANTED', 'EXTENDED', 'RELEASED', 'REVOKED', 'EXPIRED', 'SUSPENDED', 'USAGE');

-- CreateTable
CREATE TABLE "User" (
    "id" TEXT NOT NULL,
    "email" TEXT,
    "role" "Role" NOT NULL DEFAULT 'USER',
    "tier" "Tier" NOT NULL DEFAULT 'FREE',
    "activeLeaseCount" INTEGER NOT NULL DEFAULT 0,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ManagedKey" (
    "id" UUID NOT NULL,
    "provider" "Provider" NOT NULL,
    "label" TEXT NOT NULL,
    "secretCiphertext" TEXT NOT NULL,
    "maskedKey" TEXT NOT NULL,
    "baseUrl" TEXT NOT NULL,
    "defaultModel" TEXT,
    "fallbackModels" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "config" JSONB NOT NULL DEFAULT '{}',
    "dailyLimitUsd" DECIMAL(20,6),
    "monthlyLimitUsd" DECIMAL(20,6),
    "maxActiveLeases" INTEGER,
    "status" "KeyStatus" NOT NULL DEFAULT 'ACTIVE',
    "disabledReason" TEXT,
    "activeLeaseCount" INTEGER NOT NULL DEFAULT 0,
    "lastGrantedAt" TIMESTAMP(3),
    "spendDay" DATE,
    "spendTodayUsd" DECIMAL(20,6) NOT NULL DEFAULT 0,
    "spendMonth" DATE,
    "spendThisMonthUsd" DECIMAL(20,6) NOT NULL DEFAULT 0,
    "lastUsedAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "ManagedKey_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "TierPolicy" (
    "tier" "Tier" NOT NULL,
    "leaseDurationSeconds" INTEGER NOT NULL,
    "maxActiveLeases" INTEGER NOT NULL,
    "spendCapUsd" DECIMAL(20,6) NOT NULL,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "TierPolicy_pkey" PRIMARY KEY ("tier")
);

-- CreateTable
CREATE TABLE "Lease" (
    "id" UUID NOT NULL,
    "userId" TEXT NOT NULL,
    "keyId" UUID NOT NULL,
    "status" "LeaseStatus" NOT NULL DEFAULT 'ACTIVE',
    "tier" "Tier" NOT NULL,
    "provider" "Provider" NOT NULL,
    "framework" "Framework" NOT NULL,
    "agentId" TEXT,
    "grantedAt" TIMESTAMP(3) NOT NULL,
    "expiresAt" TIMESTAMP(3) NOT NULL,
    "endedAt" TIMESTAMP(3),
    "endReason" TEXT,
    "spendCapUsd" DECIMAL(20,6) NOT NULL,
    "usageUsd" DECIMAL(20,6) NOT NULL DEFAULT 0,
    "requestCount" INTEGER NOT NULL DEFAULT 0,
    "lastUsedAt" TIMESTAMP(3),
    "tokenHash" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Lease_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "LeaseEvent" (
    "id" BIGSERIAL NOT NULL,
    "txId" BIGINT NOT NULL DEFAULT ((pg_current_xact_id())::text)::bigint,
    "type" "LeaseEventType" NOT NULL,
    "at" TIMESTAMP(3) NOT NULL,
    "leaseId" UUID NOT NULL,
    "userId" TEXT NOT NULL,
    "keyId" UUID NOT NULL,
    "agentId" TEXT,
    "stopAgent" BOOLEAN NOT NULL,
    "details" JSONB NOT NULL DEFAULT '{}',

    CONSTRAINT "LeaseEvent_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "AuditEntry" (
    "id" BIGSERIAL NOT NULL,
    "at" TIMESTAMP(3) NOT NULL,
    "actorId" TEXT NOT NULL,
    "actorRole" "Role" NOT NULL,
    "action" TEXT NOT NULL,
    "targetType" TEXT NOT NULL,
    "targetId" TEXT,
    "details" JSONB NOT NULL DEFAULT '{}',

    CONSTRAINT "AuditEntry_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "UsageRecord" (
    "id" BIGSERIAL NOT NULL,
    "leaseId" UUID NOT NULL,
    "keyId" UUID NOT NULL,
    "requestId" TEXT NOT NULL,
    "model" TEXT,
    "promptTokens" INTEGER,
    "completionTokens" INTEGER,
    "costUsd" DECIMAL(20,6) NOT NULL,
    "costSource" TEXT NOT NULL,
    "at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "UsageRecord_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "ManagedKey_provider_status_activeLeaseCount_idx" ON "ManagedKey"("provider", "status", "activeLeaseCount");

-- CreateIndex
CREATE INDEX "ManagedKey_createdAt_id_idx" ON "ManagedKey"("createdAt", "id");

-- CreateIndex
CREATE UNIQUE INDEX "Lease_tokenHash_key" ON "Lease"("tokenHash");

-- CreateIndex
CREATE INDEX "Lease_status_expiresAt_idx" ON "Lease"("status", "expiresAt");

-- CreateIndex
CREATE INDEX "Lease_userId_status_agentId_idx" ON "Lease"("userId", "status", "agentId");

-- CreateIndex
CREATE INDEX "Lease_keyId_status_idx" ON "Lease"("keyId", "status");

-- CreateIndex
CREATE INDEX "Lease_grantedAt_id_idx" ON "Lease"("grantedAt", "id");

-- CreateIndex
CREATE INDEX "LeaseEvent_leaseId_idx" ON "LeaseEvent"("leaseId");

-- CreateIndex
CREATE INDEX "LeaseEvent_txId_idx" ON "LeaseEvent"("txId");

-- CreateIndex
CREATE INDEX "AuditEntry_targetType_targetId_idx" ON "AuditEntry"("targetType", "targetId");

-- CreateIndex
CREATE INDEX "UsageRecord_keyId_at_idx" ON "UsageRecord"("keyId", "at");

-- CreateIndex
CREATE UNIQUE INDEX "UsageRecord_leaseId_requestId_key" ON "UsageRecord"("leaseId", "requestId");

-- AddForeignKey
ALTER TABLE "Lease" ADD CONSTRAINT "Lease_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Lease" ADD CONSTRAINT "Lease_keyId_fkey" FOREIGN KEY ("keyId") REFERENCES "ManagedKey"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "LeaseEvent" ADD CONSTRAINT "LeaseEvent_leaseId_fkey" FOREIGN KEY ("leaseId") REFERENCES "Lease"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "UsageRecord" ADD CONSTRAINT "UsageRecord_leaseId_fkey" FOREIGN KEY ("leaseId") REFERENCES "Lease"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "UsageRecord" ADD CONSTRAINT "UsageRecord_keyId_fkey" FOREIGN KEY ("keyId") REFERENCES "ManagedKey"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- Seed: default tier policies (FREE 2 days / 1 agent / $5, PRO 30 days / 3 / $50,
-- ENTERPRISE 365 days / 10 / $1000). Admins change them with updateTierPolicy.
INSERT INTO "TierPolicy" ("tier", "leaseDurationSeconds", "maxActiveLeases", "spendCapUsd", "updatedAt") VALUES
  ('FREE', 172800, 1, 5, CURRENT_TIMESTAMP),
  ('PRO', 2592000, 3, 50, CURRENT_TIMESTAMP),
  ('ENTERPRISE', 31536000, 10, 1000, CURRENT_TIMESTAMP);
