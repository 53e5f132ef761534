-- CreateEnum
CREATE TYPE "KeyMode" AS ENUM ('SHARED', 'MINT');

-- CreateEnum
CREATE TYPE "MintedKeyStatus" AS ENUM ('PENDING', 'ACTIVE', 'DISABLED', 'DELETED', 'EXPIRED');

-- CreateEnum
CREATE TYPE "ProviderJobKind" AS ENUM ('CREATE', 'SET_EXPIRY', 'SET_LIMIT', 'DISABLE', 'ENABLE', 'DELETE');

-- CreateEnum
CREATE TYPE "ProviderJobStatus" AS ENUM ('PENDING', 'RUNNING', 'DONE', 'IRRECOVERABLE');

-- AlterEnum
ALTER TYPE "LeaseEventType" ADD VALUE 'PROVIDER_JOB_FAILED';

-- AlterTable
ALTER TABLE "ManagedKey" ADD COLUMN     "maxMintedKeys" INTEGER,
ADD COLUMN     "mintedKeyCount" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "mode" "KeyMode" NOT NULL DEFAULT 'SHARED';

-- CreateTable
CREATE TABLE "MintedKey" (
    "id" UUID NOT NULL,
    "leaseId" UUID NOT NULL,
    "mintingKeyId" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "providerKeyId" TEXT,
    "secretCiphertext" TEXT,
    "maskedKey" TEXT,
    "limitUsd" DECIMAL(20,6),
    "expiresAt" TIMESTAMP(3) NOT NULL,
    "status" "MintedKeyStatus" NOT NULL DEFAULT 'PENDING',
    "providerCreatedAt" TIMESTAMP(3),
    "deletedAt" TIMESTAMP(3),
    "providerUsageUsd" DECIMAL(30,12),
    "providerCheckedAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "MintedKey_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ProviderJob" (
    "id" BIGSERIAL NOT NULL,
    "kind" "ProviderJobKind" NOT NULL,
    "mintedKeyId" UUID NOT NULL,
    "leaseId" UUID NOT NULL,
    "mintingKeyId" UUID NOT NULL,
    "status" "ProviderJobStatus" NOT NULL DEFAULT 'PENDING',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "runAfter" TIMESTAMP(3) NOT NULL,
    "claimedUntil" TIMESTAMP(3),
    "lastError" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "ProviderJob_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "MintedKey_leaseId_key" ON "MintedKey"("leaseId");

-- CreateIndex
CREATE INDEX "MintedKey_mintingKeyId_providerCreatedAt_idx" ON "MintedKey"("mintingKeyId", "providerCreatedAt");

-- CreateIndex
CREATE INDEX "MintedKey_providerKeyId_idx" ON "MintedKey"("providerKeyId");

-- CreateIndex
CREATE INDEX "ProviderJob_unfinished_runAfter_id_idx" ON "ProviderJob"("runAfter", "id") WHERE (status = ANY (ARRAY['PENDING'::"ProviderJobStatus", 'RUNNING'::"ProviderJobStatus"]));

-- CreateIndex
CREATE INDEX "ProviderJob_mintedKeyId_id_idx" ON "ProviderJob"("mintedKeyId", "id");

-- CreateIndex
CREATE INDEX "ProviderJob_leaseId_id_idx" ON "ProviderJob"("leaseId", "id");

-- CreateIndex
CREATE INDEX "ProviderJob_mintingKeyId_id_idx" ON "ProviderJob"("mintingKeyId", "id");

-- CreateIndex
CREATE INDEX "ProviderJob_status_id_idx" ON "ProviderJob"("status", "id");

-- AddForeignKey
ALTER TABLE "MintedKey" ADD CONSTRAINT "MintedKey_leaseId_fkey" FOREIGN KEY ("leaseId") REFERENCES "Lease"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "MintedKey" ADD CONSTRAINT "MintedKey_mintingKeyId_fkey" FOREIGN KEY ("mintingKeyId") REFERENCES "ManagedKey"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
