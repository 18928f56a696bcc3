import type { Metadata } from "next";
import AuthPage from "../_components/AuthPage";

export const metadata: Metadata = { title: "Sign in · writethrough-tasks" };

export default function SignInPage({ searchParams }: { searchParams: Promise<{ next?: string | string[] }> }) {
  return <AuthPage mode="sign-in" searchParams={searchParams} />;
}
