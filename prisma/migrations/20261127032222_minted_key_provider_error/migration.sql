-- AlterTable
ALTER TABLE "MintedKey" ADD COLUMN     "providerError" TEXT;
