import type { Metadata } from "next";
import AuthPage from "../_components/AuthPage";

export const metadata: Metadata = { title: "Create an account · writethrough-tasks" };

export default function SignUpPage({ searchParams }: { searchParams: Promise<{ next?: string | string[] }> }) {
  return <AuthPage mode="sign-up" searchParams={searchParams} />;
}
